"""Password hashes: argon2id at OWASP's parameters, older hashes verified and marked for rehash,
the dummy check, and the work off the event loop."""

import hashlib
import secrets
import threading

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from brokerlink.auth import passwords
from brokerlink.auth.passwords import (
    check_password,
    check_password_async,
    dummy_hash,
    hash_password,
    hash_password_async,
    needs_rehash,
)

PASSWORD = "correct horse battery"


def scrypt_hash(password: str) -> str:
    """A hash in the first format (scrypt, N=2^14), as stored before argon2id."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"


def weak_argon2_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(password)


class TestHashes:
    def test_new_hashes_are_argon2id_at_owasp_parameters_or_above(self):
        stored = hash_password(PASSWORD)
        params = extract_parameters(stored)
        assert stored.startswith("$argon2id$")
        assert params.type is Type.ID
        # OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
        assert params.memory_cost >= 19 * 1024
        assert params.time_cost >= 2
        assert params.parallelism >= 1
        assert check_password(PASSWORD, stored).ok
        assert not check_password("wrong horse battery", stored).ok
        assert not needs_rehash(stored)

    def test_two_hashes_of_one_password_differ(self):
        assert hash_password(PASSWORD) != hash_password(PASSWORD)

    def test_a_scrypt_hash_still_verifies_and_needs_a_rehash(self):
        stored = scrypt_hash(PASSWORD)
        assert check_password(PASSWORD, stored) == passwords.PasswordCheck(
            ok=True, needs_rehash=True
        )
        assert not check_password("wrong horse battery", stored).ok

    def test_a_weaker_argon2_hash_verifies_and_needs_a_rehash(self):
        stored = weak_argon2_hash(PASSWORD)
        assert check_password(PASSWORD, stored) == passwords.PasswordCheck(
            ok=True, needs_rehash=True
        )

    @pytest.mark.parametrize("stored", ["", "garbage", "scrypt$1$2", "$argon2id$v=19$m=1"])
    def test_a_broken_hash_matches_nothing(self, stored):
        assert not check_password(PASSWORD, stored).ok

    def test_a_password_with_a_lone_surrogate_is_a_wrong_password_not_an_error(self):
        assert not check_password("a\ud800b", hash_password(PASSWORD)).ok


class TestDummyCheck:
    def test_no_hash_runs_a_check_against_the_dummy_of_the_same_parameters(self, monkeypatch):
        seen: list[str] = []
        real = passwords._verify

        def counting(password: str, stored: str) -> bool:
            seen.append(stored)
            return real(password, stored)

        monkeypatch.setattr(passwords, "_verify", counting)
        assert check_password(PASSWORD, None) == passwords.PasswordCheck(ok=False)
        assert seen == [dummy_hash()]
        dummy, current = extract_parameters(dummy_hash()), extract_parameters(hash_password("x"))
        assert dummy == current


class TestOffTheLoop:
    @pytest.mark.asyncio
    async def test_hashing_and_checking_run_in_the_password_threads(self, monkeypatch):
        threads: list[str] = []
        real_hash, real_verify = passwords.hash_password, passwords._verify

        def hash_in(password: str) -> str:
            threads.append(threading.current_thread().name)
            return real_hash(password)

        def verify_in(password: str, stored: str) -> bool:
            threads.append(threading.current_thread().name)
            return real_verify(password, stored)

        monkeypatch.setattr(passwords, "hash_password", hash_in)
        monkeypatch.setattr(passwords, "_verify", verify_in)
        stored = await hash_password_async(PASSWORD)
        assert (await check_password_async(PASSWORD, stored)).ok
        assert not (await check_password_async(PASSWORD, None)).ok
        assert len(threads) == 3
        assert threading.current_thread().name not in threads
        assert all(name.startswith("brokerlink-password") for name in threads), threads
