"""AWS Secrets Manager: one secret per name, its value the JSON text as SecretString.

Every boto3 call runs in a worker thread (`asyncio.to_thread`); botocore's errors become the
store's typed errors (see `brokerlink.secrets._boto.store_error`), chained with `from`.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from brokerlink.secrets._boto import make_client, store_error
from brokerlink.secrets.store import (
    SecretNotFound,
    SecretStoreError,
    SecretValue,
    check_name,
    decode_value,
    encode_value,
)

__all__ = ["AwsSecretsManagerStore"]

T = TypeVar("T")
_SERVICE = "secretsmanager"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class AwsSecretsManagerStore:
    """A `SecretStore` on Secrets Manager. Names are stored as `prefix + name`.

    Pass a boto3 `secretsmanager` client, or `region`/`endpoint_url` to build one from the
    default credential chain. `page_size` bounds each ListSecrets page (default: the service's).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        prefix: str = "",
        page_size: int | None = None,
    ) -> None:
        self._client = client or make_client(_SERVICE, region=region, endpoint_url=endpoint_url)
        self.prefix = prefix
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"AwsSecretsManagerStore(prefix={self.prefix!r})"

    async def put(self, name: str, value: SecretValue) -> None:
        check_name(name)
        text = encode_value(name, value)
        await self._call("PutSecretValue", name, self._put_sync, name, text)

    async def get(self, name: str) -> SecretValue:
        response = await self._call(
            "GetSecretValue",
            name,
            self._client.get_secret_value,
            SecretId=self.prefix + name,
        )
        if "SecretString" not in response:
            raise SecretStoreError(f"secret {name!r} holds binary data, not JSON")
        return decode_value(name, response["SecretString"])

    async def delete(self, name: str) -> None:
        try:
            await self._call(
                "DeleteSecret",
                name,
                self._client.delete_secret,
                SecretId=self.prefix + name,
                # The 7-30 day recovery window would block re-creating the name meanwhile.
                ForceDeleteWithoutRecovery=True,
            )
        except SecretNotFound:
            pass

    async def list(self, prefix: str = "") -> builtins.list[str]:
        return await self._call("ListSecrets", prefix or "*", self._list_sync, prefix)

    # -- blocking parts ------------------------------------------------------------------------

    async def _call(
        self, operation: str, name: str, function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise store_error(error, service=_SERVICE, operation=operation, name=name) from error

    def _put_sync(self, name: str, text: str) -> None:
        secret_id = self.prefix + name
        try:
            self._client.put_secret_value(SecretId=secret_id, SecretString=text)
            return
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
        try:
            self._client.create_secret(Name=secret_id, SecretString=text)
        except ClientError as error:
            # Another writer created it between our two calls: ours becomes the new version.
            if _code(error) != "ResourceExistsException":
                raise
            self._client.put_secret_value(SecretId=secret_id, SecretString=text)

    def _list_sync(self, prefix: str) -> builtins.list[str]:
        full_prefix = self.prefix + prefix
        arguments: dict[str, Any] = {}
        if full_prefix:
            # Secrets Manager's `name` filter is a case-sensitive prefix match.
            arguments["Filters"] = [{"Key": "name", "Values": [full_prefix]}]
        if self.page_size is not None:
            arguments["PaginationConfig"] = {"PageSize": self.page_size}
        names: builtins.list[str] = []
        for page in self._client.get_paginator("list_secrets").paginate(**arguments):
            for entry in page.get("SecretList", []):
                full_name = str(entry["Name"])
                # Checked again here: the filter's matching rules are the service's, not ours.
                if full_name.startswith(full_prefix):
                    names.append(full_name[len(self.prefix) :])
        return sorted(names)
