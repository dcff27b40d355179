"""Settings that would weaken authentication are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bot.cli.main import cli
from bot.settings import SlackSettings, TeamsSettings


@pytest.mark.parametrize("variable", ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"])
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_an_empty_slack_secret_from_an_env_file_cannot_sign_forged_requests(
    tmp_path: Path, variable: str, blank: str
) -> None:
    env = {
        "LORE_CONFIG": str(tmp_path / "absent.toml"),
        "LORE_HOME": str(tmp_path / "home"),
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "SLACK_SIGNING_SECRET": "a-real-secret",
        variable: blank,
    }
    # Every command reads the settings first; `lore serve` never gets to start the bot.
    result = CliRunner().invoke(cli, ["search", "pto"], env=env)
    assert result.exit_code == 1
    assert f"{variable} (slack." in result.output and "is set but empty" in result.output
    assert "Traceback" not in result.output


def test_a_blank_teams_identity_is_refused_and_unset_stays_local_mode() -> None:
    with pytest.raises(ValidationError, match="MICROSOFT_APP_ID"):
        TeamsSettings(app_id="  ")
    with pytest.raises(ValidationError, match="MICROSOFT_APP_PASSWORD"):
        TeamsSettings(app_id="0f8fad5b-d9cb-469f-a165-70867728950e", app_password=" ")
    assert TeamsSettings().app_id == ""  # unset: the explicit local mode, checked elsewhere
    assert SlackSettings(signing_secret="s3cret").signing_secret.get_secret_value() == "s3cret"


def test_a_malformed_setting_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    env = {"LORE_CONFIG": str(tmp_path / "absent.toml"), "LORE_HOME": str(tmp_path), "LORE_RETRIEVAL__K": "ten"}
    result = CliRunner().invoke(cli, ["search", "pto"], env=env)
    assert result.exit_code == 1
    assert "retrieval.k" in result.output and "Traceback" not in result.output
