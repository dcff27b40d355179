"""`lore manifests teams`: build the Teams app package to upload."""

from __future__ import annotations

from pathlib import Path

import click

from bot.platforms.teams.app_package import (
    DEFAULT_WEBSITE_URL,
    TEMPLATE_DIR,
    build_package,
    manifest_values,
)


@click.group()
def manifests() -> None:
    """Build the app packages that install Lore in chat platforms."""


@manifests.command("teams")
@click.option("--app-id", required=True, help="The bot's Microsoft App ID (MICROSOFT_APP_ID), a GUID.")
@click.option("--domain", help="Host serving /api/messages, e.g. lore.example.com (goes into validDomains).")
@click.option("--website-url", help="https:// page about the bot (default: https://DOMAIN/).")
@click.option(
    "--version",
    "app_version",
    default="1.0.0",
    show_default=True,
    help="App version; raise it for every update.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("lore-teams.zip"),
    show_default=True,
    help="Where to write the package.",
)
@click.option(
    "--template-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=TEMPLATE_DIR,
    show_default=True,
    help="Folder with manifest.json, color.png and outline.png.",
)
def teams(
    app_id: str,
    domain: str | None,
    website_url: str | None,
    app_version: str,
    out: Path,
    template_dir: Path,
) -> None:
    """Fill the Teams manifest and zip it with the icons, ready to upload."""
    values = manifest_values(app_id, domain=domain, website_url=website_url, version=app_version)
    manifest = build_package(values, out, template_dir)
    click.echo(f"Wrote {out} (app {manifest['id']}, version {manifest['version']}).")
    if values["WEBSITE_URL"] == DEFAULT_WEBSITE_URL:
        click.echo(f"Note: the developer links point to {DEFAULT_WEBSITE_URL}; pass --domain or --website-url.")
    click.echo("Upload it in Teams (Apps → Manage your apps → Upload an app) or in the Developer Portal.")
