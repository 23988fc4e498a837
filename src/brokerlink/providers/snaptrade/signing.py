"""SnapTrade request signatures.

The signed object is `{"content": body, "path": path, "query": raw_query}` as canonical JSON
(sorted keys at every level, no whitespace), HMAC-SHA256 under the consumer key, base64-encoded,
and sent in the `Signature` header. `path` is the path actually requested (with `/api/v1` when the
base URL carries it) and `query` is the query string exactly as sent, without the leading `?`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

__all__ = ["build_query", "canonical_payload", "sign"]


def canonical_payload(path: str, query: str, body: Any) -> str:
    """The exact text that is signed. An absent body and `{}` both sign as `null`."""
    content = None if body is None or body == {} else body
    return json.dumps(
        {"content": content, "path": path, "query": query},
        separators=(",", ":"),
        sort_keys=True,
    )


def sign(consumer_key: str, path: str, query: str, body: Any) -> str:
    """Base64 HMAC-SHA256 of the canonical payload under `consumer_key`."""
    message = canonical_payload(path, query, body).encode()
    digest = hmac.new(consumer_key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build_query(params: Sequence[tuple[str, str]]) -> str:
    """Join params in the given order. The string built here is both sent and signed.

    Values are percent-encoded only where a character would break the query (`&`, `=`, space,
    non-ASCII); ids and secrets SnapTrade issues are plain ASCII and go out verbatim, as the
    official SDK sends them.
    """
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='-_.~:,')}" for k, v in params)
