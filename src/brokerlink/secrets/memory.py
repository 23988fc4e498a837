"""An in-process secret store for tests of code that needs one. Values are copied in and out."""

from __future__ import annotations

import builtins
from collections.abc import Mapping

from brokerlink.secrets.store import (
    SecretNotFound,
    SecretValue,
    check_name,
    decode_value,
    encode_value,
)

__all__ = ["MemorySecretStore"]


class MemorySecretStore:
    """A `SecretStore` in a dict, with the same name and value rules as the real backends."""

    def __init__(self, initial: Mapping[str, SecretValue] | None = None) -> None:
        # Stored as JSON text, so callers can't mutate a stored value through a reference.
        self._data: dict[str, str] = {}
        for name, value in (initial or {}).items():
            self._data[check_name(name)] = encode_value(name, value)

    def __repr__(self) -> str:
        return f"MemorySecretStore(<{len(self._data)} secrets>)"

    async def put(self, name: str, value: SecretValue) -> None:
        self._data[check_name(name)] = encode_value(name, value)

    async def get(self, name: str) -> SecretValue:
        try:
            text = self._data[name]
        except KeyError:
            raise SecretNotFound(f"secret {name!r} not found") from None
        return decode_value(name, text)

    async def delete(self, name: str) -> None:
        self._data.pop(name, None)

    async def list(self, prefix: str = "") -> builtins.list[str]:
        return sorted(name for name in self._data if name.startswith(prefix))
