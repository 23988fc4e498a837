"""Server-side check of SnapTrade request signatures (independent of the client's signer)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

__all__ = ["canonical_content", "expected_signature", "signature_matches"]


def canonical_content(body: Any) -> Any:
    """The `content` member of the signed object: None for no body or an empty object."""
    if body is None or body == {}:
        return None
    return body


def expected_signature(consumer_key: str, path: str, raw_query: str, body: Any) -> str:
    signed = json.dumps(
        {"content": canonical_content(body), "path": path, "query": raw_query},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hmac.new(consumer_key.encode(), signed.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_matches(
    consumer_key: str, path: str, raw_query: str, body: Any, signature: str | None
) -> bool:
    """True when `signature` signs (path, raw query as received, parsed body)."""
    if not signature:
        return False
    expected = expected_signature(consumer_key, path, raw_query, body)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
