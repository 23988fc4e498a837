"""Per-user secrets envelope-encrypted into the database; app credentials in an inner store.

For a per-user name (`snaptrade/user_secret/…`, `plaid/access_token/…`) a put asks KMS
`GenerateDataKey` for a fresh AES-256 key, encrypts the JSON with AES-GCM under it (the name is
the associated data), and stores `nonce + ciphertext` with the KMS-wrapped key in
`user_secrets_envelope`. The wrapped key carries the name as its KMS encryption context, so a
row copied under another name fails to decrypt on both counts. A get asks KMS `Decrypt` for the
data key. Plaintext data keys are never stored.

Every other name (the app's credentials) goes to the inner store, normally Secrets Manager: a
few secrets there, tens of thousands of rows here. See docs/secrets.md for the cost trade-off.
"""

from __future__ import annotations

import asyncio
import builtins
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.repositories.secrets import EnvelopeSecretRepository
from brokerlink.repositories.users import UserRepository
from brokerlink.secrets._boto import make_client, store_error
from brokerlink.secrets.store import (
    SecretAccessDenied,
    SecretNotFound,
    SecretStore,
    SecretStoreError,
    SecretStoreUnavailable,
    SecretValue,
    check_name,
    decode_value,
    encode_value,
)

__all__ = ["PER_USER_PREFIXES", "KmsEnvelopeStore"]

PER_USER_PREFIXES = ("snaptrade/user_secret/", "plaid/access_token/")
_NONCE_BYTES = 12
_CONTEXT_KEY = "brokerlink:secret"
_SERVICE = "kms"

T = TypeVar("T")


class KmsEnvelopeStore:
    """A `SecretStore`: per-user names in the database under KMS data keys, others in `inner`.

    It owns its short transactions on `sessionmaker` (one per call), so callers need none.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        inner: SecretStore,
        *,
        key_id: str,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        per_user_prefixes: tuple[str, ...] = PER_USER_PREFIXES,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.inner = inner
        self.key_id = key_id
        self._kms = client or make_client(_SERVICE, region=region, endpoint_url=endpoint_url)
        self.per_user_prefixes = per_user_prefixes

    def __repr__(self) -> str:
        return f"KmsEnvelopeStore(key_id={self.key_id!r}, inner={self.inner!r})"

    def is_per_user(self, name: str) -> bool:
        return name.startswith(self.per_user_prefixes)

    # -- the SecretStore interface -------------------------------------------------------------

    async def put(self, name: str, value: SecretValue) -> None:
        check_name(name)
        if not self.is_per_user(name):
            await self.inner.put(name, value)
            return
        plaintext = encode_value(name, value).encode()
        response = await self._kms_call(
            "GenerateDataKey",
            name,
            self._kms.generate_data_key,
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext={_CONTEXT_KEY: name},
        )
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(response["Plaintext"]).encrypt(nonce, plaintext, name.encode())
        async with self._repository(name) as repository:
            await repository.put(
                name,
                ciphertext=ciphertext,
                wrapped_data_key=response["CiphertextBlob"],
                key_id=str(response.get("KeyId", self.key_id)),
                user_id=await self._owner(repository.session, name),
            )

    async def get(self, name: str) -> SecretValue:
        if not self.is_per_user(name):
            return await self.inner.get(name)
        async with self._repository(name) as repository:
            row = await repository.get(name)
            if row is None:
                raise SecretNotFound(f"secret {name!r} not found")
            blob, wrapped, key_id = bytes(row.ciphertext), bytes(row.wrapped_data_key), row.key_id
        response = await self._kms_call(
            "Decrypt",
            name,
            self._kms.decrypt,
            CiphertextBlob=wrapped,
            KeyId=key_id,
            EncryptionContext={_CONTEXT_KEY: name},
        )
        nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            plaintext = AESGCM(response["Plaintext"]).decrypt(nonce, ciphertext, name.encode())
        except (InvalidTag, ValueError) as error:
            raise SecretAccessDenied(
                f"secret {name!r}: the envelope does not decrypt (modified or moved row)"
            ) from error
        return decode_value(name, plaintext)

    async def delete(self, name: str) -> None:
        if not self.is_per_user(name):
            await self.inner.delete(name)
            return
        async with self._repository(name) as repository:
            await repository.delete(name)

    async def list(self, prefix: str = "") -> builtins.list[str]:
        names: set[str] = set()
        # Only ask a side that can hold names under `prefix`.
        if any(p.startswith(prefix) or prefix.startswith(p) for p in self.per_user_prefixes):
            async with self._repository(prefix or "*") as repository:
                rows = await repository.list_by_prefix(prefix)
                names.update(row.name for row in rows)
        if not any(prefix.startswith(p) for p in self.per_user_prefixes):
            # Per-user names left in the inner store (say, from the "aws" backend) are not
            # readable through this store, so they are not listed either.
            inner = await self.inner.list(prefix)
            names.update(name for name in inner if not self.is_per_user(name))
        return sorted(names)

    # -- helpers -------------------------------------------------------------------------------

    async def _owner(self, session: AsyncSession, name: str) -> int | None:
        """The `users.id` the name's user segment refers to, when that user exists.

        Linking the row makes deleting the user delete their envelopes (ON DELETE CASCADE);
        ids that are not ours (not numeric, unknown) leave the row unowned.
        """
        prefix = next(p for p in self.per_user_prefixes if name.startswith(p))
        segment = name[len(prefix) :].split("/", 1)[0]
        if not segment.isascii() or not segment.isdigit() or len(segment) > 18:
            return None
        user = await UserRepository.from_session(session).get(int(segment))
        return user.id if user is not None else None

    @asynccontextmanager
    async def _repository(self, name: str) -> AsyncIterator[EnvelopeSecretRepository]:
        """One short committed transaction; database failures become typed store errors."""
        try:
            async with transaction(self._sessionmaker) as session:
                yield EnvelopeSecretRepository.from_session(session)
        except OperationalError as error:
            raise SecretStoreUnavailable(f"the database is unavailable ({name!r})") from error
        except DBAPIError as error:
            # The database only ever sees ciphertext, so its error text holds no secret.
            raise SecretStoreError(f"database error on secret {name!r}") from error

    async def _kms_call(
        self, operation: str, name: str, function: Callable[..., T], **kwargs: Any
    ) -> T:
        try:
            return await asyncio.to_thread(function, **kwargs)
        except (ClientError, BotoCoreError) as error:
            mapped = store_error(error, service=_SERVICE, operation=operation, name=name)
            if isinstance(mapped, SecretNotFound):
                # KMS's NotFoundException is about the key, not the secret.
                mapped = SecretAccessDenied(f"kms {operation} of {name!r}: key not found")
            raise mapped from error
