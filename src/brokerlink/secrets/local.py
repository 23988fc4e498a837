"""The embedded default: every secret in one file, encrypted as a whole with AES-256-GCM.

File layout (JSON):
`{"format": "brokerlink-secrets", "version": 1, "nonce": <b64>, "ciphertext": <b64>}`, where
the ciphertext is the JSON map `{name: value}`. Encrypting the whole map authenticates the
names as well as the values and keeps user ids out of the file. The format and version are the
associated data, so they cannot be swapped either.

Writers take an exclusive `flock` on `<file>.lock`, read-modify-write the map, and replace the
file atomically (temp file, fsync, `os.replace`, fsync of the directory): concurrent writers in
several processes lose nothing, and a reader sees the old map or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from brokerlink.errors import ConfigurationError
from brokerlink.secrets.store import (
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    SecretValue,
    check_name,
    decode_value,
    encode_value,
)

__all__ = ["LocalSecretStore", "decode_key", "generate_key"]

_FORMAT = "brokerlink-secrets"
_VERSION = 1
_AAD = f"{_FORMAT}/v{_VERSION}".encode()
_KEY_BYTES = 32
_NONCE_BYTES = 12

T = TypeVar("T")


def generate_key() -> str:
    """A new key in the form `BROKERLINK_SECRET_KEY` takes: urlsafe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def decode_key(text: str) -> bytes:
    """The 32 key bytes from their urlsafe base64 form (`BROKERLINK_SECRET_KEY`, the key file)."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise ConfigurationError("the secret key is not urlsafe base64") from None
    if len(key) != _KEY_BYTES:
        raise ConfigurationError(f"the secret key must be {_KEY_BYTES} bytes, base64-encoded")
    return key


class LocalSecretStore:
    """A `SecretStore` in one encrypted file.

    `key` (32 bytes) wins; otherwise the key is read from `key_file` (default: `secret.key`
    next to `path`), which is created with mode 0600 on first use.
    """

    def __init__(
        self, path: Path | str, key: bytes | None = None, key_file: Path | str | None = None
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.key_file = (
            Path(key_file) if key_file is not None else self.path.with_name("secret.key")
        )
        if key is not None and len(key) != _KEY_BYTES:
            raise ConfigurationError(f"the secret key must be {_KEY_BYTES} bytes")
        self._aead: AESGCM | None = AESGCM(key) if key is not None else None

    def __repr__(self) -> str:
        return f"LocalSecretStore(path={str(self.path)!r})"

    # -- the SecretStore interface -------------------------------------------------------------

    async def put(self, name: str, value: SecretValue) -> None:
        check_name(name)
        text = encode_value(name, value)

        def update(data: dict[str, Any]) -> None:
            data[name] = json.loads(text)

        await self._run(self._modify, update)

    async def get(self, name: str) -> SecretValue:
        data = await self._run(self._read)
        if name not in data:
            raise SecretNotFound(f"secret {name!r} not found")
        return decode_value(name, json.dumps(data[name]))

    async def delete(self, name: str) -> None:
        def update(data: dict[str, Any]) -> None:
            data.pop(name, None)

        await self._run(self._modify, update)

    async def list(self, prefix: str = "") -> builtins.list[str]:
        data = await self._run(self._read)
        return sorted(name for name in data if name.startswith(prefix))

    # -- blocking parts, run in a worker thread ------------------------------------------------

    @staticmethod
    async def _run(function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load_or_create_key())
        return self._aead

    def _load_or_create_key(self) -> bytes:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._read_key_file()
        except FileNotFoundError:
            pass
        # Write the key to a private temp file, then link it into place: `link` fails if another
        # process got there first, and nobody ever sees a half-written key file.
        fd, temp = tempfile.mkstemp(prefix=".secret.key.", dir=self.key_file.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_key() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temp, self.key_file)
        finally:
            os.unlink(temp)
        _fsync_directory(self.key_file.parent)
        return self._read_key_file()

    def _read_key_file(self) -> bytes:
        mode = self.key_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretAccessDenied(
                f"key file {self.key_file} is accessible by group or others; chmod 600 it"
            )
        return decode_key(self.key_file.read_text())

    def _read(self) -> dict[str, Any]:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        return self._decrypt(blob)

    def _modify(self, update: Callable[[dict[str, Any]], None]) -> None:
        cipher = self._cipher()
        with self._locked():
            data = self._read()
            update(data)
            nonce = secrets.token_bytes(_NONCE_BYTES)
            plaintext = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
            envelope = {
                "format": _FORMAT,
                "version": _VERSION,
                "nonce": base64.b64encode(nonce).decode(),
                "ciphertext": base64.b64encode(cipher.encrypt(nonce, plaintext, _AAD)).decode(),
            }
            self._write_atomically(json.dumps(envelope).encode())

    def _decrypt(self, blob: bytes) -> dict[str, Any]:
        cipher = self._cipher()
        try:
            envelope = json.loads(blob)
            if envelope.get("format") != _FORMAT or envelope.get("version") != _VERSION:
                raise ValueError("unknown format")
            nonce = base64.b64decode(envelope["nonce"], validate=True)
            ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SecretAccessDenied(
                f"secret file {self.path} is not a brokerlink secret file (damaged?)"
            ) from None
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, _AAD)
        except (InvalidTag, ValueError) as error:
            raise SecretAccessDenied(
                f"cannot decrypt {self.path}: wrong key, or the file was modified"
            ) from error
        data = json.loads(plaintext)
        if not isinstance(data, dict):
            raise SecretStoreError(f"secret file {self.path} does not hold a map")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)

    def _write_atomically(self, content: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _fsync_directory(self.path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; a crash after os.replace keeps the new file.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
