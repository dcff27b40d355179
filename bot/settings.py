"""One settings object for the whole bot, read from `lore.toml` and `LORE_*` environment variables.

Precedence (highest first): arguments passed in code, `LORE_*` variables (nested with `__`,
e.g. `LORE_MODEL__BACKEND=openai`), `lore.toml` (path in `LORE_CONFIG`, default `./lore.toml`),
defaults. Platform secrets keep the platforms' own variable names (`SLACK_BOT_TOKEN`,
`MICROSOFT_APP_ID`, ...).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

import knowledge
from knowledge.config import (
    FolderSourceSettings,
    IndexSettings,
    RefreshSettings,
    RetrievalSettings,
    SourceSettings,
)

SAMPLE_DOCS = Path(knowledge.__file__).resolve().parent / "sample_docs"


class ModelSettings(BaseModel):
    backend: Literal["local", "openai"] = "local"
    base_model: Path | None = None  # a local Hugging Face model folder; None = bundled SmolLM2-135M
    adapter: str | None = None  # adapter name to answer with; None = the promoted one
    device: str = "auto"
    max_new_tokens: int = 120  # answers are one to three sentences
    temperature: float = 0.0
    repetition_penalty: float = 1.2
    queue_size: int = 32
    # torch's threads for the local backend (None: one per core). Replicas sharing a machine
    # should split its cores (cores / replicas): oversubscribed, two replicas answered 4x
    # slower than one on 2 cores (benchmarks/replicas_throughput.py).
    cpu_threads: int | None = Field(default=None, ge=1)
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "lore"
    openai_api_key: SecretStr = SecretStr("")
    request_timeout_seconds: float = 120.0


class AgentSettings(BaseModel):
    persona: str = "You are Lore, the company's internal assistant."
    glossary_file: Path | None = None
    fallback_text: str = (
        "I couldn't find this in the company's documents. Please ask in #help or contact the team that owns the topic."
    )
    # Cosine similarity of the question and the closest sentence of the top passages below
    # which the knowledge base is taken not to cover the question (see `EvidenceJudge.is_covered` in bot/core/judge.py).
    min_evidence_score: float = 0.46
    # At or above: covered whatever words are missing; between the two, `rare_word_verdict`
    # decides for a question naming something the index barely mentions.
    confident_evidence_score: float = 0.60
    rare_word_verdict: Literal["not covered", "hedged", "covered"] = "not covered"
    hedge_text: str = "I'm not sure this answers it; the closest I found in our documents:"
    # Does the model write the answer, or is the evidence the answer (at once)? "auto": it
    # writes when its last measured share of answers whose text passed the grounding check
    # reaches `min_generated_shown` (see bot/model/writing.py); "always"; "never".
    generate: Literal["auto", "always", "never"] = "auto"
    min_generated_shown: float = 0.5
    history_turns: int = 6
    answer_retention_days: int = 90
    # Feedback (ratings, comments, corrections) is deleted after this many days, by the same
    # housekeeping that purges answers (at start-up and daily under `lore serve`).
    feedback_retention_days: int = Field(default=90, ge=1)


class PermissionSettings(BaseModel):
    """Who may read what, beyond the ACL file (`acl_file`) and directory file (`directory_file`)."""

    unix_groups: dict[str, str] = Field(default_factory=dict)  # Unix group → directory group (or "everyone")
    unix_users: dict[str, str] = Field(default_factory=dict)  # Unix user → e-mail
    unix_user_domain: str | None = None  # unmapped Unix user → user@domain (else user@localhost)
    # Conversation (Slack channel / Teams chat) id → the directory group all its members share;
    # answers there may use that group's documents. Elsewhere shared places see `everyone` only.
    channel_audiences: dict[str, str] = Field(default_factory=dict)
    identity_cache_seconds: float = 3600.0  # Slack/Teams user → e-mail look-ups
    # Slack guests (`is_restricted` / `is_ultra_restricted`) are refused unless this names a
    # directory group to put them in; a guest let in holds that group, `everyone` (every reader
    # of the index does) and what their own e-mail gives, like a colleague.
    slack_guest_group: str | None = None


class CustomizeSettings(BaseModel):
    """Scheduled retraining under `lore serve`, and the optional teacher model that writes
    training questions for `lore customize dataset`."""

    # Retrain when at least this many feedback items arrived since the last run; 0 = never.
    retrain_min_feedback: int = 0
    retrain_cron: str = "0 3 * * *"  # when `lore serve` checks (crontab, local time)
    promote_metric: Literal["answer_accuracy", "citation_accuracy", "abstention"] = "answer_accuracy"
    retrain_max_minutes: float = 30.0  # training stops (keeping its best weights) after this
    admin_slack_channel: str | None = None  # channel id the retraining result is posted to
    admin_teams_webhook_url: SecretStr | None = None  # Teams incoming-webhook URL, same purpose
    # OpenAI-compatible teacher that writes question/answer pairs from each chunk; None = the
    # offline derivation from the documents' structure.
    teacher_base_url: str | None = None
    teacher_model: str = ""
    teacher_api_key: SecretStr = SecretStr("")
    teacher_questions_per_chunk: int = 2
    # FAQ and glossary files (YAML or CSV) every dataset uses, scheduled ones included;
    # `lore customize dataset --curated` adds to them.
    curated_files: list[Path] = Field(default_factory=list)
    # Chat users whose feedback on anyone's answer may become training data, as
    # "slack:<Slack user id>" or "teams:<Azure AD object id>" (the ids the platforms sign,
    # never a display name or roster e-mail). Everyone else's feedback trains only when they
    # asked the question themselves; typed corrections always wait for `lore feedback approve`.
    admins: list[str] = Field(default_factory=list)
    # Datasets under LORE_HOME/datasets and adapters under LORE_HOME/adapters older than this
    # are deleted by the answer-log housekeeping; the active adapter and the one a rollback
    # returns to are always kept.
    dataset_retention_days: int = Field(default=90, ge=1)
    adapter_retention_days: int = Field(default=180, ge=1)

    @field_validator("admins")
    @classmethod
    def _platform_ids(cls, value: list[str]) -> list[str]:
        for entry in value:
            platform, _, user_id = entry.partition(":")
            if platform not in ("slack", "teams") or not user_id.strip():
                raise ValueError(
                    f"customize.admins entry {entry!r} must be 'slack:<user id>' or "
                    "'teams:<Azure AD object id>', e.g. 'slack:U012AB3CD'"
                )
        return value


class ServerSettings(BaseModel):
    """`lore serve`'s HTTP server (Slack's and Teams' endpoints, /healthz)."""

    # Requests with a larger body get 413; Slack and Teams payloads stay far below 1 MiB.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # A body that has not fully arrived after this long gets 408 (slow senders hold no worker).
    body_read_seconds: float = Field(default=10.0, gt=0)
    # /healthz shows only {"status"} to anyone but loopback callers and holders of this token
    # (`Authorization: Bearer <token>`); LORE_SERVER__HEALTH_TOKEN.
    health_token: SecretStr | None = None
    # Whether `lore serve` runs the scheduled jobs (refreshes, retraining, purges) itself. With
    # several replicas, set it false on all of them and run one `lore worker`
    # (LORE_SERVER__RUN_JOBS; `lore serve --no-jobs`).
    run_jobs: bool = True

    @field_validator("health_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("LORE_SERVER__HEALTH_TOKEN (server.health_token) is set but empty")
        return value


class ConsoleSettings(BaseModel):
    """The admin console `lore serve` serves at /admin (bot/console): who may sign in, how.

    Admins sign in with the company's identity provider over OpenID Connect (`issuer`,
    `client_id`, `client_secret`; the redirect URI is `<public_url>/admin/auth/callback`), or
    send `Authorization: Bearer <token>` where `token_sha256` is the token's SHA-256 in hex."""

    enabled: bool = True  # false: no /admin routes at all (404)
    # E-mails and directory groups ("group:it", resolved through directory_file) allowed in.
    admins: list[str] = Field(default_factory=list)
    # Of the admins, who may read answers given in private conversations (each view is logged).
    private_answers_viewers: list[str] = Field(default_factory=list)
    token_sha256: str | None = None  # LORE_CONSOLE__TOKEN_SHA256
    issuer: str | None = None  # e.g. https://login.microsoftonline.com/<tenant>/v2.0
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    # Where browsers reach `lore serve` (the redirect URI's base); https makes cookies Secure.
    public_url: str = "http://127.0.0.1:3978"
    # Signs the session cookies; unset: a random key kept in LORE_HOME/console-session.key.
    session_secret: SecretStr | None = None
    session_hours: float = Field(default=12.0, gt=0)

    @field_validator("admins", "private_answers_viewers")
    @classmethod
    def _emails_or_groups(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not (entry.startswith("group:") and entry[6:].strip()) and "@" not in entry:
                raise ValueError(f"console admin entry {entry!r} must be an e-mail or 'group:<name>', e.g. 'group:it'")
        return value

    @field_validator("token_sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value.strip()):
            raise ValueError(
                "console.token_sha256 must be 64 hex digits: the SHA-256 of the token "
                '(e.g. `printf %s "$TOKEN" | sha256sum`), never the token itself'
            )
        return value.strip().lower() if value is not None else None


class SlackSettings(BaseModel):
    bot_token: SecretStr | None = None  # SLACK_BOT_TOKEN
    signing_secret: SecretStr | None = None  # SLACK_SIGNING_SECRET
    app_token: SecretStr | None = None  # SLACK_APP_TOKEN: Socket Mode when set
    api_url: str = "https://slack.com/api/"  # SLACK_API_URL
    thread_followups: Literal["always", "mention_only"] = "always"
    channel_followups: dict[str, Literal["always", "mention_only"]] = Field(default_factory=dict)
    rate_limit_per_minute: int = 10
    # Who counts as a colleague: accounts of these workspaces (T…) or Enterprise Grid
    # organisations (E…). Both empty: the workspace and organisation of the bot token.
    allowed_team_ids: list[str] = Field(default_factory=list)
    allowed_enterprise_ids: list[str] = Field(default_factory=list)
    # Externally shared (Slack Connect) channels are read by other organisations too: the bot
    # answers there only when this is on.
    answer_in_shared_channels: bool = False

    @field_validator("bot_token", "signing_secret", "app_token")
    @classmethod
    def _not_blank(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # An empty line in an .env file (`SLACK_SIGNING_SECRET=`) must not become an empty
        # HMAC key that signs forged requests: refuse it at start-up.
        if value is not None and not value.get_secret_value().strip():
            variable = _PLATFORM_ENV[("slack", str(info.field_name))]
            raise ValueError(
                f"{variable} (slack.{info.field_name}) is set but empty: give its value from the "
                "Slack app's settings, or remove the setting"
            )
        return value

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None


class TeamsSettings(BaseModel):
    app_id: str = ""  # MICROSOFT_APP_ID; empty = local/emulator mode without auth
    app_password: SecretStr = SecretStr("")  # MICROSOFT_APP_PASSWORD
    app_tenant_id: str = ""  # MICROSOFT_APP_TENANT_ID
    app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = "MultiTenant"
    rate_limit_per_minute: int = 10  # questions per user; more get a polite "please wait"
    # Azure AD tenants whose users count as colleagues; empty = the app's own tenant
    # (app_tenant_id). A MultiTenant bot with neither does not start (bot.platforms.teams.membership).
    allowed_tenant_ids: list[str] = Field(default_factory=list)

    @field_validator("app_id", "app_password", "app_tenant_id")
    @classmethod
    def _no_blank_value(cls, value: str | SecretStr, info: ValidationInfo) -> str | SecretStr:
        # Unset is "" (local mode); a value of spaces only is a mistake, never an identity.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text and not text.strip():
            variable = _PLATFORM_ENV[("teams", str(info.field_name))]
            raise ValueError(
                f"{variable} (teams.{info.field_name}) holds only white space: give its value or remove it"
            )
        return value


def _sample_source() -> SourceSettings:
    return FolderSourceSettings(name="sample", path=SAMPLE_DOCS, permissions="public")


# LORE_SOURCES__<n>__<KEY>: one setting of the n-th [[sources]] table (from 0), typically a
# cloud drive's secret kept out of lore.toml (LORE_SOURCES__0__CLIENT_SECRET).
_SOURCE_ITEM_VARIABLE = re.compile(r"LORE_SOURCES__(\d+)__([A-Z0-9_]+)", re.IGNORECASE)


class _EnvWithoutSourceItems(PydanticBaseSettingsSource):
    """The LORE_* variables, except LORE_SOURCES__<n>__<KEY>: pydantic-settings would read
    those as a mapping that replaces lore.toml's whole list; `_source_item_variables` sets
    them on the listed tables instead."""

    def __init__(self, env: PydanticBaseSettingsSource) -> None:
        super().__init__(env.settings_cls)
        self.env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self.env()
        sources = values.get("sources")
        if isinstance(sources, dict) and all(str(key).isdigit() for key in sources):
            del values["sources"]
        return values


def _source_item_variables(data: dict[str, Any]) -> dict[str, Any]:
    """Apply LORE_SOURCES__<n>__<KEY> to the n-th configured source; a variable naming a
    source that is not configured is an error rather than silently unused."""
    items = [
        (int(match[1]), match[2].lower(), value)
        for name, value in os.environ.items()
        if (match := _SOURCE_ITEM_VARIABLE.fullmatch(name))
    ]
    if not items:
        return data
    sources = [dict(source) if isinstance(source, dict) else source for source in data.get("sources") or []]
    for index, key, value in sorted(items):
        if index >= len(sources) or not isinstance(sources[index], dict):
            raise ValueError(
                f"LORE_SOURCES__{index}__{key.upper()} is set but lore.toml has no [[sources]] table number "
                f"{index} (counting from 0): fix the number or remove the variable"
            )
        sources[index][key] = value
    data["sources"] = sources
    return data


_PLATFORM_ENV = {
    ("slack", "bot_token"): "SLACK_BOT_TOKEN",
    ("slack", "signing_secret"): "SLACK_SIGNING_SECRET",
    ("slack", "app_token"): "SLACK_APP_TOKEN",
    ("slack", "api_url"): "SLACK_API_URL",
    ("teams", "app_id"): "MICROSOFT_APP_ID",
    ("teams", "app_password"): "MICROSOFT_APP_PASSWORD",
    ("teams", "app_tenant_id"): "MICROSOFT_APP_TENANT_ID",
    ("teams", "app_type"): "MICROSOFT_APP_TYPE",
}


class LoreSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Path(".lore")
    database_url: str | None = None  # SQLAlchemy URL; None = sqlite under home
    acl_file: Path | None = None
    directory_file: Path | None = None
    permissions: PermissionSettings = Field(default_factory=PermissionSettings)
    sources: list[SourceSettings] = Field(
        # The bundled sample handbook is public; a configured source must choose (see
        # FolderSourceSettings.permissions).
        default_factory=lambda: [_sample_source()]
    )
    index: IndexSettings = Field(default_factory=IndexSettings)
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    customize: CustomizeSettings = Field(default_factory=CustomizeSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)  # the admin console at /admin
    slack: SlackSettings = Field(default_factory=SlackSettings)
    teams: TeamsSettings = Field(default_factory=TeamsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("LORE_CONFIG", "lore.toml"))
        return (init_settings, _EnvWithoutSourceItems(env_settings), TomlConfigSettingsSource(settings_cls, toml_path))

    @model_validator(mode="before")
    @classmethod
    def _platform_secrets(cls, data: object) -> object:
        """Fill Slack and Teams settings from the platforms' own variable names."""
        if not isinstance(data, dict):
            return data
        for (section, key), variable in _PLATFORM_ENV.items():
            value = os.environ.get(variable)
            if value is None:
                continue
            part = dict(data.get(section) or {})
            part.setdefault(key, value)
            data[section] = part
        return _source_item_variables(data)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'lore.db').resolve()}"

    @property
    def shared_database_url(self) -> str | None:
        """The database when it is PostgreSQL: shared by every machine using it, it then also
        holds the index catalog and the refresh and retraining locks. None: SQLite, one
        machine (the catalog is a file under the index folder, the locks are file locks)."""
        return self.database if make_url(self.database).get_backend_name() == "postgresql" else None

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def models_cache_dir(self) -> Path:
        return self.home / "models"
