"""Process entry points for the multi-process tests (importable by `spawn` children)."""

from __future__ import annotations

import asyncio
from pathlib import Path


def put_many(path: str, key: bytes | None, key_file: str | None, worker: int, count: int) -> None:
    from brokerlink.secrets.local import LocalSecretStore

    store = LocalSecretStore(Path(path), key=key, key_file=Path(key_file) if key_file else None)

    async def run() -> None:
        for index in range(count):
            await store.put(f"snaptrade/user_secret/w{worker}/i{index}", {"v": f"{worker}-{index}"})

    asyncio.run(run())
