"""The Teams app package: manifest against Microsoft's schema, icons, zip layout, CLI."""

from __future__ import annotations

import io
import json
import runpy
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from PIL import Image

from bot.cli.main import cli
from bot.platforms.teams.app_package import TEMPLATE_DIR, fill_manifest, manifest_values

SCHEMA_FILE = Path(__file__).parent / "schemas" / "MicrosoftTeams.v1.25.schema.json"
APP_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    # Not `check_schema`: a pattern in an unused part (Office add-in extensions) is written in
    # a regex dialect Python's `re` lacks (\p{L}); the parts a Teams bot uses are plain.
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft4Validator(schema)


def filled(domain: str | None = "lore.example.com") -> dict:
    template = json.loads((TEMPLATE_DIR / "manifest.json").read_text())
    return fill_manifest(template, manifest_values(APP_ID, domain=domain))


def errors(validator: jsonschema.Draft4Validator, manifest: dict) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest)]


def test_filled_manifest_is_valid(validator: jsonschema.Draft4Validator) -> None:
    manifest = filled()
    assert errors(validator, manifest) == []
    # draft-04 ignores `const`; check the version the schema pins by hand.
    assert manifest["manifestVersion"] == validator.schema["properties"]["manifestVersion"]["const"]
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert "{{" not in json.dumps(manifest)
    (bot,) = manifest["bots"]
    assert manifest["id"] == bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    commands = {c["title"] for cl in bot["commandLists"] for c in cl["commands"]}
    assert commands == {"ask", "help", "feedback"}
    assert manifest["validDomains"] == ["lore.example.com"]
    assert manifest["developer"]["websiteUrl"] == "https://lore.example.com/"
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_without_domain_the_manifest_is_still_valid(validator: jsonschema.Draft4Validator) -> None:
    manifest = filled(domain=None)
    assert manifest["validDomains"] == []
    assert errors(validator, manifest) == []


def test_the_schema_check_catches_mistakes(validator: jsonschema.Draft4Validator) -> None:
    manifest = filled()
    manifest["bots"][0]["scopes"] = ["personal", "groupchat"]  # the pre-1.17 spelling
    manifest["id"] = "not-a-guid"
    found = errors(validator, manifest)
    assert any("groupchat" in e for e in found) and any("not-a-guid" in e for e in found)


def test_cli_builds_the_zip(tmp_path: Path, validator: jsonschema.Draft4Validator) -> None:
    out = tmp_path / "pkg" / "lore-teams.zip"
    result = CliRunner().invoke(
        cli,
        [
            "manifests",
            "teams",
            "--app-id",
            APP_ID.upper(),
            "--domain",
            "https://lore.example.com/api/messages",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color = Image.open(io.BytesIO(package.read("color.png")))
        outline = Image.open(io.BytesIO(package.read("outline.png")))
    assert errors(validator, manifest) == []
    assert manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["lore.example.com"]
    assert (color.format, color.size) == ("PNG", (192, 192))
    assert (outline.format, outline.size, outline.mode) == ("PNG", (32, 32), "RGBA")
    pixels = list(outline.get_flattened_data())
    assert all(a == 0 or (r, g, b, a) == (255, 255, 255, 255) for r, g, b, a in pixels)
    opaque = sum(1 for p in pixels if p[3] == 255)
    assert 0.1 < opaque / len(pixels) < 0.9  # a visible glyph on a transparent background


def test_cli_rejects_a_bad_app_id(tmp_path: Path) -> None:
    out = tmp_path / "lore-teams.zip"
    result = CliRunner().invoke(cli, ["manifests", "teams", "--app-id", "my-bot", "--out", str(out)])
    assert result.exit_code == 1
    assert "--app-id must be the bot's Microsoft App ID, a GUID" in result.output
    assert not out.exists()


def test_committed_icons_are_what_the_script_draws(tmp_path: Path) -> None:
    runpy.run_path(str(TEMPLATE_DIR / "make_icons.py"))["main"](tmp_path)
    for name in ("color.png", "outline.png"):
        drawn = Image.open(tmp_path / name)
        committed = Image.open(TEMPLATE_DIR / name)
        assert list(drawn.get_flattened_data()) == list(committed.get_flattened_data()), name
