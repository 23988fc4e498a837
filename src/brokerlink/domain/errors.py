"""Errors raised by provider adapters, in two families.

    ProviderError                       # root: provider, operation, status, code, request_id
    ├── TechnicalError                  # transient: retrying later can succeed
    │   ├── ProviderUnavailable         # 5xx, connection refused, timeout
    │   ├── RateLimited                 # 429; `retry_after` seconds when the provider said
    │   └── MalformedResponse           # a payload that does not match the provider's contract
    └── LogicalError                    # the request itself is wrong; retrying cannot help
        ├── AuthFailed                  # 401/403; app credentials or a user's secret rejected
        │   └── ReconnectRequired       # the user must re-link the institution
        │       └── UserReconnectRequired # ... every one of theirs at this provider
        ├── NotFound                    # 404
        └── ProviderRejected            # 400/402/422 and other refusals

Messages name the operation and the provider's own code, and never contain a secret.
"""

from .enums import Provider

__all__ = [
    "AuthFailed",
    "LogicalError",
    "MalformedResponse",
    "NotFound",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "ReconnectRequired",
    "TechnicalError",
    "UserReconnectRequired",
]


class ProviderError(Exception):
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: Provider,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.provider.value} {self.operation}: {self.message}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class TechnicalError(ProviderError):
    retryable = True


class LogicalError(ProviderError):
    retryable = False


class ProviderUnavailable(TechnicalError):
    pass


class RateLimited(TechnicalError):
    #: Seconds the provider asked us to wait, when it said (Retry-After or a reset header).
    retry_after: float | None = None


class MalformedResponse(TechnicalError):
    #: The JSON path of the offending field, e.g. "results[3].units".
    field: str | None = None


class AuthFailed(LogicalError):
    pass


class ReconnectRequired(AuthFailed):
    #: The provider's id of the one connection concerned, when the adapter knows it.
    connection_id: str | None = None


class UserReconnectRequired(ReconnectRequired):
    """Not one connection but all of the user's at this provider must be re-linked."""


class NotFound(LogicalError):
    pass


class ProviderRejected(LogicalError):
    pass
