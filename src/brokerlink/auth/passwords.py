"""Password hashes: argon2id, computed off the event loop.

New hashes are argon2id with m=19 MiB (19456 KiB), t=2, p=1, a 16-byte salt and a 32-byte tag:
the first configuration of OWASP's Password Storage Cheat Sheet (its minimum for argon2id),
about 21 ms a check on a 2-core machine. Older hashes still verify and report `needs_rehash`,
so that the next successful sign-in replaces them:

    scrypt$16384$8$1$<salt hex>$<digest hex>      the first format (N=2^14, below OWASP's 2^17)
    $argon2id$v=19$m=…,t=…,p=…$…                  argon2 with parameters below the current ones

Checking a password for an account that has no hash (an unknown email, an API-only user) runs
a full verification against a dummy hash of the current parameters, so that such an answer
costs the same as a wrong password and cannot tell whether the account exists.

The work is CPU and memory by design; the async functions run it in a small dedicated pool of
threads (argon2-cffi and hashlib.scrypt release the GIL while they work), so the event loop
keeps serving and a burst of sign-ins queues instead of taking 19 MiB per request at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "ARGON2_MEMORY_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "PasswordCheck",
    "check_password",
    "check_password_async",
    "dummy_hash",
    "hash_password",
    "hash_password_async",
    "needs_rehash",
    "verify_password",
]

# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1 (or an equivalent trade).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_HASHER = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
# At most this many hashes at once per process (19 MiB each); the others wait their turn.
_WORKERS = max(2, min(4, os.cpu_count() or 2))
_POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="brokerlink-password")


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    # The password was right and its hash is of an older scheme or weaker parameters.
    needs_rehash: bool = False


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (blocking: about 21 ms of CPU; see the async twin)."""
    return _HASHER.hash(password)


@functools.cache
def dummy_hash() -> str:
    """A hash of the current parameters that no password matches (made once per process)."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def _verify_scrypt(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(got.hex(), digest)


def _verify(password: str, stored: str) -> bool:
    """The one place a password is checked against a hash (argon2 or the older scrypt)."""
    try:
        if stored.startswith("$argon2"):
            return _HASHER.verify(stored, password)
        return _verify_scrypt(password, stored)
    except (VerificationError, InvalidHashError, ValueError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether `stored` is of an older scheme or weaker parameters than new hashes get."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def check_password(password: str, stored: str | None) -> PasswordCheck:
    """Check `password` against `stored`; with no usable hash, do the same work and say no."""
    if not stored:
        _verify(password, dummy_hash())
        return PasswordCheck(ok=False)
    if not _verify(password, stored):
        return PasswordCheck(ok=False)
    return PasswordCheck(ok=True, needs_rehash=needs_rehash(stored))


def verify_password(password: str, stored: str | None) -> bool:
    return check_password(password, stored).ok


async def hash_password_async(password: str) -> str:
    """`hash_password` in the password pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, hash_password, password)


async def check_password_async(password: str, stored: str | None) -> PasswordCheck:
    """`check_password` in the password pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, check_password, password, stored)
