"""An in-process `SecretStore` for the demo and tests: nothing leaves the process or outlives it."""

from __future__ import annotations

import copy

from brokerlink.secrets.store import SecretNotFound, SecretValue

__all__ = ["InMemoryUserSecretStore"]


class InMemoryUserSecretStore:
    """A dict behind the `SecretStore` protocol. Values are copied in and out."""

    def __init__(self) -> None:
        self._data: dict[str, SecretValue] = {}
        self.puts = 0

    def __repr__(self) -> str:
        return f"InMemoryUserSecretStore({len(self._data)} secrets)"

    async def put(self, name: str, value: SecretValue) -> None:
        self.puts += 1
        self._data[name] = copy.deepcopy(value)

    async def get(self, name: str) -> SecretValue:
        try:
            return copy.deepcopy(self._data[name])
        except KeyError:
            raise SecretNotFound(f"no secret named {name!r}") from None

    async def delete(self, name: str) -> None:
        self._data.pop(name, None)

    async def list(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self._data if n.startswith(prefix))
