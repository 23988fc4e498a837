"""The encrypted local file: key handling, tamper evidence, atomic writes, concurrent writers."""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import stat

import pytest

from brokerlink.errors import ConfigurationError
from brokerlink.secrets import (
    LocalSecretStore,
    SecretAccessDenied,
    decode_key,
    generate_key,
)
from tests.secrets import _workers

NAME = "snaptrade/user_secret/u1/alpaca"
SECRET = "s3cr3t-value-do-not-leak"


@pytest.mark.asyncio
class TestKeyFile:
    async def test_created_with_mode_0600_on_first_use(self, tmp_path):
        store = LocalSecretStore(tmp_path / "secrets.enc")
        await store.put(NAME, {"user_secret": SECRET})

        key_file = tmp_path / "secret.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(decode_key(key_file.read_text())) == 32

    async def test_reused_by_a_second_store(self, tmp_path):
        await LocalSecretStore(tmp_path / "secrets.enc").put(NAME, {"user_secret": SECRET})

        again = LocalSecretStore(tmp_path / "secrets.enc")

        assert await again.get(NAME) == {"user_secret": SECRET}

    async def test_explicit_key_file_location(self, tmp_path):
        key_file = tmp_path / "keys" / "brokerlink.key"
        store = LocalSecretStore(tmp_path / "secrets.enc", key_file=key_file)
        await store.put(NAME, {"v": 1})

        assert key_file.exists()
        assert not (tmp_path / "secret.key").exists()

    async def test_key_file_readable_by_others_is_refused(self, tmp_path):
        key_file = tmp_path / "secret.key"
        key_file.write_text(generate_key())
        key_file.chmod(0o644)

        with pytest.raises(SecretAccessDenied, match="chmod 600"):
            await LocalSecretStore(tmp_path / "secrets.enc").put(NAME, {"v": 1})

    async def test_explicit_key_creates_no_key_file(self, tmp_path):
        store = LocalSecretStore(tmp_path / "secrets.enc", key=decode_key(generate_key()))
        await store.put(NAME, {"v": 1})

        assert not (tmp_path / "secret.key").exists()


class TestKeyText:
    @pytest.mark.parametrize("text", ["not base64!!", base64.urlsafe_b64encode(b"short").decode()])
    def test_bad_key_text(self, text):
        with pytest.raises(ConfigurationError):
            decode_key(text)

    def test_bad_key_length(self, tmp_path):
        with pytest.raises(ConfigurationError):
            LocalSecretStore(tmp_path / "secrets.enc", key=b"0" * 16)


@pytest.mark.asyncio
class TestEncryption:
    async def test_file_holds_neither_names_nor_values(self, tmp_path, local_key):
        store = LocalSecretStore(tmp_path / "secrets.enc", key=local_key)
        await store.put(NAME, {"user_secret": SECRET})

        content = (tmp_path / "secrets.enc").read_bytes()
        assert SECRET.encode() not in content
        # The whole name: a short piece of it can occur by chance in the base64 ciphertext.
        assert NAME.encode() not in content
        assert b"alpaca" not in content
        assert stat.S_IMODE((tmp_path / "secrets.enc").stat().st_mode) == 0o600

    async def test_wrong_key_is_access_denied_without_the_secret(self, tmp_path, local_key):
        await LocalSecretStore(tmp_path / "secrets.enc", key=local_key).put(
            NAME, {"user_secret": SECRET}
        )
        other = LocalSecretStore(tmp_path / "secrets.enc", key=decode_key(generate_key()))

        with pytest.raises(SecretAccessDenied, match="wrong key") as caught:
            await other.get(NAME)
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)

    async def test_wrong_key_cannot_overwrite(self, tmp_path, local_key):
        path = tmp_path / "secrets.enc"
        await LocalSecretStore(path, key=local_key).put(NAME, {"user_secret": SECRET})
        before = path.read_bytes()

        with pytest.raises(SecretAccessDenied):
            await LocalSecretStore(path, key=decode_key(generate_key())).put(NAME, {"v": 2})

        assert path.read_bytes() == before

    async def test_tampered_ciphertext_is_access_denied(self, tmp_path, local_key):
        path = tmp_path / "secrets.enc"
        store = LocalSecretStore(path, key=local_key)
        await store.put(NAME, {"user_secret": SECRET})
        envelope = json.loads(path.read_bytes())
        raw = bytearray(base64.b64decode(envelope["ciphertext"]))
        raw[0] ^= 0x01
        envelope["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        path.write_text(json.dumps(envelope))

        with pytest.raises(SecretAccessDenied):
            await store.get(NAME)

    async def test_changed_version_header_is_access_denied(self, tmp_path, local_key):
        path = tmp_path / "secrets.enc"
        store = LocalSecretStore(path, key=local_key)
        await store.put(NAME, {"v": 1})
        envelope = json.loads(path.read_bytes())
        envelope["version"] = 2
        path.write_text(json.dumps(envelope))

        with pytest.raises(SecretAccessDenied):
            await store.list()

    async def test_garbage_file_is_access_denied(self, tmp_path, local_key):
        (tmp_path / "secrets.enc").write_bytes(b"\x00garbage")

        with pytest.raises(SecretAccessDenied, match="not a brokerlink secret file"):
            await LocalSecretStore(tmp_path / "secrets.enc", key=local_key).get(NAME)

    async def test_missing_file_is_an_empty_store(self, tmp_path, local_key):
        store = LocalSecretStore(tmp_path / "nested" / "secrets.enc", key=local_key)

        assert await store.list() == []


@pytest.mark.asyncio
class TestAtomicWrite:
    async def test_failed_write_keeps_the_previous_file(self, tmp_path, local_key, monkeypatch):
        path = tmp_path / "secrets.enc"
        store = LocalSecretStore(path, key=local_key)
        await store.put(NAME, {"v": "old"})

        def crash(*_args):
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            await store.put(NAME, {"v": "new"})
        monkeypatch.undo()

        assert await store.get(NAME) == {"v": "old"}
        # No temp file left behind.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.enc", "secrets.enc.lock"]

    async def test_concurrent_tasks_lose_nothing(self, tmp_path, local_key):
        store = LocalSecretStore(tmp_path / "secrets.enc", key=local_key)

        await asyncio.gather(*(store.put(f"misc/t{i}", {"i": i}) for i in range(40)))

        assert len(await store.list("misc/")) == 40


class TestConcurrentProcesses:
    def test_four_processes_lose_nothing(self, tmp_path):
        path = tmp_path / "secrets.enc"
        key_file = tmp_path / "secret.key"
        context = multiprocessing.get_context("spawn")
        # No key given: the processes also race to create the key file, and must agree on it.
        processes = [
            context.Process(
                target=_workers.put_many, args=(str(path), None, str(key_file), worker, 25)
            )
            for worker in range(4)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]

        store = LocalSecretStore(path, key_file=key_file)
        names = asyncio.run(store.list())

        assert len(names) == 100
        assert asyncio.run(store.get("snaptrade/user_secret/w3/i24")) == {"v": "3-24"}
