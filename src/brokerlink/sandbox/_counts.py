"""Requests that reached a sandbox, counted per operation (`"METHOD /path"`) at the server.

Each sandbox counts every API request the moment it arrives, before authentication, rate limits
or injected faults, so a count says what the provider saw, whatever the client believes it sent.
Its admin routes read and reset the counts (SnapTrade: `/sandbox/requests`, Plaid:
`/sandbox-admin/requests`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["RequestCounts"]


class RequestCounts:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        # Requests answered 429 by the sandbox's own rate limit (a client over the limit).
        self.rate_limited = 0

    def hit(self, method: str, path: str) -> None:
        self._counts[f"{method.upper()} {path}"] += 1

    def limited(self) -> None:
        self.rate_limited += 1

    def get(self, method: str, path: str) -> int:
        return self._counts[f"{method.upper()} {path}"]

    def reset(self) -> None:
        self._counts.clear()
        self.rate_limited = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self._counts.items())),
            "total": self._counts.total(),
            "rate_limited": self.rate_limited,
        }
