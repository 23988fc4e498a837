"""The secret store contract: one interface, several backends (local file, Secrets Manager, KMS).

Secrets are small JSON objects addressed by slash-separated names, as the portfolio code names them:

    snaptrade/app_credentials                          {client_id, consumer_key, environment}
    snaptrade/user_secret/{user_id}/{institution-slug}  {user_secret, user_id, institution,
                                                        snaptrade_user_id, created_at}
    plaid/access_token/{user_id}/{item_id}              {access_token}

A Plaid item's metadata (institution, status) lives in its connection's row, not here: one secret
per connection, read once per call. Records of older versions sit under
`plaid/access_token/{user_id}/{institution-slug}` with that metadata beside the token; the Plaid
connector moves each to its item's name the first time it is read.

Errors (all `SecretStoreError`, never carrying a secret value):

    SecretStoreError
    ├── SecretNotFound        the name does not exist
    ├── SecretAccessDenied    the backend refused (IAM, wrong key, tampered ciphertext)
    ├── SecretThrottled       the backend asked us to slow down (retryable)
    ├── SecretStoreUnavailable the backend could not be reached (retryable)
    └── InvalidSecret         a name or value the stores refuse (bad characters, not JSON, too big)
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from brokerlink.errors import BrokerlinkError

__all__ = [
    "MAX_SECRET_BYTES",
    "InvalidSecret",
    "SecretValue",
    "check_name",
    "decode_value",
    "encode_value",
    "SecretAccessDenied",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreError",
    "SecretStoreUnavailable",
    "SecretThrottled",
    "plaid_access_token_name",
    "plaid_access_token_prefix",
    "plaid_slug_access_token_name",
    "snaptrade_app_credentials_name",
    "snaptrade_user_secret_name",
]

SecretValue = dict[str, Any]


# Secrets Manager's limit on SecretString; every backend enforces it so they stay swappable.
MAX_SECRET_BYTES = 65_536
# Secrets Manager's name alphabet; a name is slash-separated segments, none empty.
_NAME = re.compile(r"[A-Za-z0-9_+=.@-]+(?:/[A-Za-z0-9_+=.@-]+)*")
_MAX_NAME_LENGTH = 512


class SecretStoreError(BrokerlinkError):
    """A secret-store operation failed; the message names the secret, never its value."""

    retryable = False
    code = "secret_store_error"


class SecretNotFound(SecretStoreError):
    status_code = 404
    code = "secret_not_found"


class SecretAccessDenied(SecretStoreError):
    code = "secret_access_denied"


class SecretThrottled(SecretStoreError):
    retryable = True
    status_code = 503
    code = "secret_store_throttled"


class SecretStoreUnavailable(SecretStoreError):
    retryable = True
    status_code = 503
    code = "secret_store_unavailable"


class InvalidSecret(SecretStoreError):
    status_code = 422
    code = "invalid_secret"


def check_name(name: str) -> str:
    """`name` if the stores accept it; `InvalidSecret` otherwise."""
    if len(name) > _MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidSecret(f"invalid secret name {name[:80]!r}")
    if any(segment in (".", "..") for segment in name.split("/")):
        raise InvalidSecret(f"invalid secret name {name[:80]!r}")
    return name


def encode_value(name: str, value: SecretValue) -> str:
    """The JSON text of a secret value. The error never quotes the value."""
    if not isinstance(value, dict):
        raise InvalidSecret(f"secret {name!r}: the value must be a JSON object")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        # `from None`: the JSON error can quote the offending (secret) value.
        raise InvalidSecret(f"secret {name!r}: the value is not JSON-serialisable") from None
    if len(text.encode()) > MAX_SECRET_BYTES:
        raise InvalidSecret(f"secret {name!r}: the value exceeds {MAX_SECRET_BYTES} bytes")
    return text


def decode_value(name: str, text: str | bytes) -> SecretValue:
    """Parse a stored value; a value that is not a JSON object is reported without its text."""
    try:
        value = json.loads(text)
    except ValueError:
        # `from None`: JSONDecodeError keeps the whole document (the secret) in `.doc`.
        raise SecretStoreError(f"secret {name!r}: the stored value is not JSON") from None
    if not isinstance(value, dict):
        raise SecretStoreError(f"secret {name!r}: the stored value is not a JSON object")
    return value


@runtime_checkable
class SecretStore(Protocol):
    """Create-or-update, read, delete and list JSON secrets by name."""

    async def put(self, name: str, value: SecretValue) -> None: ...

    async def get(self, name: str) -> SecretValue:
        """The secret's value; raises `SecretNotFound` when there is none."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the secret; deleting a missing name is not an error."""
        ...

    async def list(self, prefix: str = "") -> list[str]:
        """Names starting with `prefix`, sorted."""
        ...


def snaptrade_app_credentials_name() -> str:
    return "snaptrade/app_credentials"


def snaptrade_user_secret_name(user_id: str, institution_slug: str) -> str:
    return f"snaptrade/user_secret/{user_id}/{institution_slug}"


def plaid_access_token_prefix(user_id: str) -> str:
    """Every Plaid token name of the user starts with this (the trailing `/` keeps user `u1`
    from matching `u10`)."""
    return f"plaid/access_token/{user_id}/"


def plaid_access_token_name(user_id: str, item_id: str) -> str:
    """The access token of the user's Plaid item (one secret per connection)."""
    return f"{plaid_access_token_prefix(user_id)}{item_id}"


def plaid_slug_access_token_name(user_id: str, institution_slug: str) -> str:
    """Where older versions, and the portfolio app's `store_plaid_access_token`, keep a token:
    by institution slug, with the item's metadata beside it."""
    return f"{plaid_access_token_prefix(user_id)}{institution_slug}"
