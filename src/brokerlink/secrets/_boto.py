"""What the AWS backends share: client construction and one botocore-error → store-error map."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from brokerlink.secrets.store import (
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    SecretThrottled,
)

__all__ = ["make_client", "store_error"]

_NOT_FOUND = frozenset({"ResourceNotFoundException", "NotFoundException"})
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
        "DecryptionFailure",
        # KMS: the wrapped key does not match the key, the context or the key's state.
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "InvalidKeyUsageException",
        "DisabledException",
        "KMSInvalidStateException",
    }
)
_THROTTLED = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "Throttling"}
)
_UNAVAILABLE = frozenset(
    {
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSInternalException",
        "DependencyTimeoutException",
    }
)


def make_client(service: str, *, region: str | None, endpoint_url: str | None) -> Any:
    """A boto3 client from the default credential chain (its own session: no global state)."""
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url)


def store_error(
    error: ClientError | BotoCoreError, *, service: str, operation: str, name: str
) -> SecretStoreError:
    """The typed store error for a botocore failure. Raise it `from error`.

    The message carries the AWS error code and request id, never a secret value (AWS's own
    messages don't echo SecretString either).
    """
    where = f"{service} {operation} of {name!r}"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        request_id = error.response.get("ResponseMetadata", {}).get("RequestId")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        suffix = f" ({code}, request id {request_id})" if request_id else f" ({code})"
        if code in _NOT_FOUND:
            return SecretNotFound(f"secret {name!r} not found{suffix}")
        if code in _DENIED:
            return SecretAccessDenied(f"{where} was refused{suffix}")
        if code in _THROTTLED:
            return SecretThrottled(f"{where} was throttled{suffix}")
        if code in _UNAVAILABLE or (isinstance(status, int) and status >= 500):
            return SecretStoreUnavailable(f"{where} failed on the service side{suffix}")
        return SecretStoreError(f"{where} failed{suffix}")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return SecretAccessDenied(f"{where}: no usable AWS credentials")
    if isinstance(error, ConnectionError | HTTPClientError):
        return SecretStoreUnavailable(f"{where}: {service} could not be reached")
    return SecretStoreError(f"{where} failed ({type(error).__name__})")
