"""Settings from the environment and `.env`, validated once at start-up.

Every setting is read here and nowhere else, so a typo in a variable name or a
malformed value stops the bot before it connects, with one line that names the
variable and what it expects (`ConfigError`), rather than a traceback an hour
into an incident.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bolt_app.adapters.llm import LlmConfig
from bolt_app.core.errors import ConfigError
from storage import redact_url

T = TypeVar("T")

DEFAULT_SLACK_API_BASE_URL = "https://slack.com/api/"
DEFAULT_NOTION_API_BASE_URL = "https://api.notion.com"
DEFAULT_DATABASE_URL = "sqlite:///firebreak.db"

_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,9}$")
_CHANNEL_ID_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one bot process.

    See "Configuration" in docs/ARCHITECTURE.md.
    """

    slack_bot_token: str
    slack_app_token: str
    notion_token: str
    notion_postmortem_database_id: str
    database_url: str = DEFAULT_DATABASE_URL
    slack_api_base_url: str = DEFAULT_SLACK_API_BASE_URL
    notion_api_base_url: str = DEFAULT_NOTION_API_BASE_URL
    incident_prefix: str = "INC"
    incident_number_start: int = 1
    incident_announce_channel: str | None = None
    reconcile_interval_seconds: float = 60.0
    #: How soon an edit or a deletion reaches the page; 0: only dumps write.
    transcript_sync_seconds: float = 10.0
    #: The transcript syncs' shared Notion budget, requests a second; 0: unpaced.
    transcript_notion_rps: float = 2.5
    postmortem_template: str | None = None
    notion_timeout_seconds: float = 15.0
    log_level: str = "INFO"
    log_format: str = "text"
    health_port: int | None = None
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str | None = None

    def __repr__(self) -> str:
        """Never print tokens, even in a debugger or a crash report."""
        return (
            f"Settings(database_url={self.database_url!r}, "
            f"slack_api_base_url={self.slack_api_base_url!r}, "
            f"notion_api_base_url={self.notion_api_base_url!r}, "
            f"incident_prefix={self.incident_prefix!r})"
        )


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> Settings:
    """Read settings from `environ` (default: the process environment) over `.env`.

    Real environment variables win over `.env`, as with python-dotenv's default, so a
    process manager can override a checked-out `.env`. `.env` is read without being
    copied into `os.environ`, which keeps tests hermetic.
    """
    return _parse(_Reader(_raw_values(environ, dotenv_path)))


#: Every setting Firebreak reads, for `misspelt_settings`.
KNOWN_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "NOTION_TOKEN",
    "NOTION_POSTMORTEM_DATABASE_ID",
    "DATABASE_URL",
    "SLACK_API_BASE_URL",
    "NOTION_API_BASE_URL",
    "INCIDENT_PREFIX",
    "INCIDENT_NUMBER_START",
    "INCIDENT_ANNOUNCE_CHANNEL",
    "RECONCILE_INTERVAL_SECONDS",
    "TRANSCRIPT_SYNC_SECONDS",
    "TRANSCRIPT_NOTION_RPS",
    "POSTMORTEM_TEMPLATE",
    "NOTION_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "HEALTH_PORT",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    "LLM_MODEL",
)


def misspelt_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> list[str]:
    """One warning line per set name that is not a setting but nearly is one
    (`INCIDENT_PREFX`, `SLACK_BOT_TOKN`): such a typo otherwise just leaves the default."""
    values = _raw_values(environ, dotenv_path)
    lines = []
    for name in sorted(values):
        if name in KNOWN_SETTINGS:
            continue
        close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1, cutoff=0.85)
        if close:
            lines.append(f"{name} is not a Firebreak setting; did you mean {close[0]}?")
    return lines


def load_notion_access(
    environ: Mapping[str, str] | None = None, dotenv_path: str | os.PathLike[str] | None = ".env"
) -> tuple[str, str]:
    """`(NOTION_TOKEN, NOTION_API_BASE_URL)` alone, read like `load_settings` reads them.

    `notion-setup` runs before the postmortem database (a required setting) exists.
    """
    env = _Reader(_raw_values(environ, dotenv_path))
    token = env.token("NOTION_TOKEN", ("ntn_", "secret_"), "a Notion integration token")
    base_url = env.parsed(
        "NOTION_API_BASE_URL", DEFAULT_NOTION_API_BASE_URL, _notion_base_url, _NOTION_BASE
    )
    return token, base_url


def _raw_values(
    environ: Mapping[str, str] | None, dotenv_path: str | os.PathLike[str] | None
) -> dict[str, str]:
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


class _Reader:
    """Typed access to raw string settings; blank values count as unset."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def optional(self, name: str) -> str | None:
        value = self._values.get(name, "").strip()
        return value or None

    def required(self, name: str, expected: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(name, f"is missing: expected {expected}")
        return value

    def token(self, name: str, prefixes: tuple[str, ...], what: str) -> str:
        """Check only the prefix: the format behind it is Slack's or Notion's business."""
        expected = f"{what} starting with " + " or ".join(f"'{p}'" for p in prefixes)
        value = self.required(name, expected)
        if not value.startswith(prefixes):
            raise ConfigError(name, f"is malformed: expected {expected}")
        return value

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            shown = redact_url(raw)  # a database URL may carry a password
            raise ConfigError(name, f"is malformed ({shown!r}): expected {expected}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError(raw)
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(raw)
    return value


def _matching(
    pattern: re.Pattern[str], transform: Callable[[str], str] = str
) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.match(raw):
            raise ValueError(raw)
        return transform(raw)

    return parse


def _one_of(choices: tuple[str, ...], transform: Callable[[str], str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = transform(raw)
        if value not in choices:
            raise ValueError(raw)
        return value

    return parse


def _http_url(raw: str) -> str:
    if not re.match(r"^https?://[^/\s]+", raw):
        raise ValueError(raw)
    return raw


_NOTION_BASE = "an http(s) URL without /v1 (notion-client adds it), e.g. https://api.notion.com"

#: 32 hex digits, dashed as a UUID or not: how Notion writes ids in links and the API.
_NOTION_ID_RE = re.compile(
    r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})"
)


def notion_id(raw: str) -> str:
    """A Notion id (dashed), from the id itself or from a link to the database
    (`https://www.notion.so/acme/Postmortems-<32 hex>?v=…`): the id ends the link's path."""
    value = raw.strip().lower()
    if "://" in value:
        segment = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1]
        value = segment[-36:] if _NOTION_ID_RE.fullmatch(segment[-36:]) else segment[-32:]
    match = _NOTION_ID_RE.fullmatch(value)
    if match is None:
        raise ValueError(raw)
    return "-".join(match.groups())


def _notion_base_url(raw: str) -> str:
    url = _http_url(raw).rstrip("/")
    if url.endswith("/v1"):
        raise ValueError(raw)
    return url


def _slack_base_url(raw: str) -> str:
    """slack_sdk joins `base_url + method`, so the base must end with a slash."""
    url = _http_url(raw)
    return url if url.endswith("/") else url + "/"


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ValueError(raw)
    return raw


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(raw)
    return raw


def _parse(env: _Reader) -> Settings:
    slack_bot_token = env.token("SLACK_BOT_TOKEN", ("xoxb-",), "a Slack bot token")
    slack_app_token = env.token("SLACK_APP_TOKEN", ("xapp-",), "a Slack app-level token")
    notion_token = env.token("NOTION_TOKEN", ("ntn_", "secret_"), "a Notion integration token")
    database_id = env.parsed(
        "NOTION_POSTMORTEM_DATABASE_ID",
        None,
        notion_id,
        "the Notion postmortem database's id (32 hex digits) or its link",
    )
    if database_id is None:
        raise ConfigError(
            "NOTION_POSTMORTEM_DATABASE_ID",
            "is missing: expected the id of the Notion postmortem database",
        )
    return Settings(
        slack_bot_token=slack_bot_token,
        slack_app_token=slack_app_token,
        notion_token=notion_token,
        notion_postmortem_database_id=database_id,
        database_url=env.parsed(
            "DATABASE_URL",
            DEFAULT_DATABASE_URL,
            _database_url,
            "sqlite:///path.db or postgresql://user@host:5432/db",
        ),
        slack_api_base_url=env.parsed(
            "SLACK_API_BASE_URL", DEFAULT_SLACK_API_BASE_URL, _slack_base_url, "an http(s) URL"
        ),
        notion_api_base_url=env.parsed(
            "NOTION_API_BASE_URL", DEFAULT_NOTION_API_BASE_URL, _notion_base_url, _NOTION_BASE
        ),
        incident_prefix=env.parsed(
            "INCIDENT_PREFIX",
            "INC",
            _matching(_PREFIX_RE, str.upper),
            "1-10 letters or digits, starting with a letter (e.g. INC)",
        ),
        incident_number_start=env.parsed(
            "INCIDENT_NUMBER_START", 1, _positive_int, "a whole number of at least 1"
        ),
        incident_announce_channel=env.parsed(
            "INCIDENT_ANNOUNCE_CHANNEL",
            None,
            _matching(_CHANNEL_ID_RE),
            "a Slack channel id such as C0123456789",
        ),
        reconcile_interval_seconds=env.parsed(
            "RECONCILE_INTERVAL_SECONDS", 60.0, _positive_float, "a number of seconds above 0"
        ),
        transcript_sync_seconds=env.parsed(
            "TRANSCRIPT_SYNC_SECONDS", 10.0, _non_negative_float, "a number of seconds, 0 or more"
        ),
        transcript_notion_rps=env.parsed(
            "TRANSCRIPT_NOTION_RPS",
            2.5,
            _non_negative_float,
            "a number of requests a second, 0 or more",
        ),
        postmortem_template=env.parsed(
            "POSTMORTEM_TEMPLATE", None, _existing_file, "the path of an existing Markdown file"
        ),
        notion_timeout_seconds=env.parsed(
            "NOTION_TIMEOUT_SECONDS", 15.0, _positive_float, "a number of seconds above 0"
        ),
        log_level=env.parsed(
            "LOG_LEVEL", "INFO", _one_of(_LOG_LEVELS, str.upper), "one of " + ", ".join(_LOG_LEVELS)
        ),
        log_format=env.parsed(
            "LOG_FORMAT", "text", _one_of(("text", "json"), str.lower), "text or json"
        ),
        health_port=env.parsed("HEALTH_PORT", None, _port, "a TCP port number (1-65535)"),
        llm_base_url=env.parsed("LLM_BASE_URL", None, _http_url, "an http(s) URL"),
        llm_api_key=env.optional("LLM_API_KEY"),
        llm_model=env.optional("LLM_MODEL"),
    )


def llm_config(settings: Settings) -> LlmConfig | None:
    """The LLM settings, or None when none is set; all three or none (ConfigError)."""
    values = {
        "LLM_BASE_URL": settings.llm_base_url,
        "LLM_API_KEY": settings.llm_api_key,
        "LLM_MODEL": settings.llm_model,
    }
    if not any(values.values()):
        return None
    for name, value in values.items():
        if not value:
            raise ConfigError(
                name,
                "is missing: the AI draft summary needs LLM_BASE_URL, "
                "LLM_API_KEY and LLM_MODEL together (or none of them)",
            )
    return LlmConfig(
        base_url=str(settings.llm_base_url),
        model=str(settings.llm_model),
        api_key=str(settings.llm_api_key),
    )
