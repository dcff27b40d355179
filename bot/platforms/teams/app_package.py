"""The Teams app package: `manifests/teams/manifest.json` with its `{{PLACEHOLDERS}}` filled,
zipped with the two icons at the zip root, ready to upload in Teams or the Developer Portal."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bot
from knowledge.errors import ConfigurationError

TEMPLATE_DIR = Path(bot.__file__).resolve().parent.parent / "manifests" / "teams"
PACKAGE_FILES = ("manifest.json", "color.png", "outline.png")
DEFAULT_WEBSITE_URL = "https://example.com/"
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def fill_manifest(template: Any, values: Mapping[str, str | None]) -> Any:
    """Replace `{{NAME}}` in every string of the template. A list item that is only a
    placeholder whose value is None is dropped (an optional entry such as a valid domain)."""
    if isinstance(template, dict):
        return {key: fill_manifest(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [
            fill_manifest(item, values)
            for item in template
            if not (isinstance(item, str) and _names_a_missing_value(item, values))
        ]
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda match: _value(values, match.group(1)), template)
    return template


def manifest_values(
    app_id: str,
    *,
    domain: str | None = None,
    website_url: str | None = None,
    version: str = "1.0.0",
) -> dict[str, str | None]:
    """Check the package options and turn them into placeholder values."""
    if not _GUID.match(app_id):
        raise ConfigurationError(
            f"--app-id must be the bot's Microsoft App ID, a GUID like "
            f"00000000-0000-0000-0000-000000000000 (got {app_id!r})."
        )
    if not _SEMVER.match(version):
        raise ConfigurationError(f"--version must look like 1.2.3 (got {version!r}).")
    host = _host(domain) if domain else None
    url = website_url or (f"https://{host}/" if host else DEFAULT_WEBSITE_URL)
    if not url.lower().startswith("https://"):
        raise ConfigurationError(f"--website-url must be an https:// URL (got {url!r}).")
    return {"APP_ID": app_id.lower(), "DOMAIN": host, "WEBSITE_URL": url, "VERSION": version}


def build_package(values: Mapping[str, str | None], out: Path, template_dir: Path = TEMPLATE_DIR) -> dict[str, Any]:
    """Write the app package zip to `out` and return the filled manifest."""
    missing = [name for name in PACKAGE_FILES if not (template_dir / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"The Teams app template in {template_dir} lacks {', '.join(missing)}; "
            "run from a checkout of Lore or pass --template-dir."
        )
    template = json.loads((template_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest: dict[str, Any] = fill_manifest(template, values)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for icon in PACKAGE_FILES[1:]:
            package.write(template_dir / icon, arcname=icon)
    partial.replace(out)  # never leave a half-written package under the requested name
    return manifest


def _names_a_missing_value(text: str, values: Mapping[str, str | None]) -> bool:
    """True when `text` is a lone placeholder whose value is not given (the item is dropped)."""
    name = _only_placeholder(text)
    return name is not None and values.get(name) is None


def _only_placeholder(text: str) -> str | None:
    match = _PLACEHOLDER.fullmatch(text)
    return match.group(1) if match else None


def _value(values: Mapping[str, str | None], name: str) -> str:
    value = values.get(name)
    if value is None:
        raise ConfigurationError(f"The Teams manifest template uses {{{{{name}}}}} but no value was given for it.")
    return value


def _host(domain: str) -> str:
    # Accept "bot.example.com", "https://bot.example.com/api/messages" or "bot.example.com:3978".
    parts = urlsplit(domain if "://" in domain else f"https://{domain}")
    if not parts.hostname:
        raise ConfigurationError(f"--domain must be a host name such as bot.example.com (got {domain!r}).")
    return parts.hostname
