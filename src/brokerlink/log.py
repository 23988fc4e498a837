"""structlog set-up with a redaction processor that runs on every log line.

Event names are dotted: `provider.resource.verb` (`snaptrade.positions.fetch`).
"""

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

__all__ = ["REDACTED", "configure_logging", "get_logger", "redact", "redact_text"]

REDACTED = "[REDACTED]"

# Keys whose values are secrets wherever they appear (normalised: lower case, no _ or -).
_SECRET_KEYS = frozenset(
    {
        "usersecret",
        "consumerkey",
        "secret",
        "signature",
        "accesstoken",
        "publictoken",
        "authorization",
        "password",
        "token",
        "apikey",
        "clientsecret",
        "plaidsecret",
        "cookie",
        "setcookie",
    }
)
# `userSecret=...` in URLs and query strings, `"consumer_key": "..."` in dumped JSON.
_QUERY_SECRET = re.compile(
    r"(?i)\b(userSecret|user_secret|consumerKey|consumer_key|secret|access_token|public_token"
    r"|signature|token)=([^&\s\"']+)"
)
_JSON_SECRET = re.compile(
    r"(?i)([\"'](?:userSecret|user_secret|consumerKey|consumer_key|secret|access_token"
    r"|public_token|signature|password)[\"']\s*:\s*)[\"'][^\"']*[\"']"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
# brokerlink's own API tokens and web sessions, wherever they appear.
_OWN_TOKEN = re.compile(r"\bblk_(api|ses)_[A-Za-z0-9_-]+")


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def redact_text(text: str) -> str:
    """Mask secrets embedded in free text (URLs, query strings, JSON, bearer headers)."""
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    text = _OWN_TOKEN.sub(lambda m: f"blk_{m.group(1)}_{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact(value: Any) -> Any:
    """Return `value` with every secret masked, recursing into mappings and sequences."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if _is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = REDACTED if _is_secret_key(key) else redact(event_dict[key])
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # sys.stderr looked up per logger, not once: it may be replaced (test capture, daemons).
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog once, at an edge (CLI, app lifespan). Logs go to stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
