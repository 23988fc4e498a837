"""Application errors. Each carries the HTTP status and stable code the API answers with.

    BrokerlinkError                  # message, status_code, code
    ├── ConfigurationError           # settings that cannot work (500, raised at start-up)
    ├── NotFoundError                # 404
    ├── ValidationError              # 422: bad input, names the field
    │   └── InvalidIdentifier        # 422: an id that cannot be one (a '/' in a provider id)
    └── RequestTooLarge              # 413: a body over the limit, refused before it is read

Provider failures are `brokerlink.domain.errors.ProviderError`; the API maps both families.
"""

__all__ = [
    "ID_MAX_LENGTH",
    "PRINTABLE",
    "PROVIDER_ID",
    "SIGNED_TOKEN",
    "BrokerlinkError",
    "ConfigurationError",
    "InvalidIdentifier",
    "NotFoundError",
    "RequestTooLarge",
    "ValidationError",
]

# A pattern for names and symbols in requests: no control characters (no NUL, which PostgreSQL
# text cannot hold, no line breaks in what ends up in logs).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

# Ids a provider issued or a client chose (SnapTrade's UUIDs, Plaid's tokens, order ids): ASCII
# letters, digits and `._~:@+-`, never starting with a dot. Such an id is always exactly one URL
# path segment that needs no escaping: no '/', '..', '%', space, '?' or non-ASCII character.
PROVIDER_ID = r"^[A-Za-z0-9_~:@+-][A-Za-z0-9._~:@+-]*$"
ID_MAX_LENGTH = 128

# What `sign_state` produces: two unpadded urlsafe-base64 parts joined by a dot.
SIGNED_TOKEN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


class BrokerlinkError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code


class ConfigurationError(BrokerlinkError):
    code = "configuration_error"


class NotFoundError(BrokerlinkError):
    status_code = 404
    code = "not_found"


class ValidationError(BrokerlinkError):
    status_code = 422
    code = "validation_error"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class InvalidIdentifier(ValidationError):
    """An id that cannot be one (a '/', '..' or a space in a provider's id): the caller's fault,
    refused before anything is sent. Requests are checked at the API's boundary already; this is
    what a provider client raises when an id reaches it anyway."""

    code = "invalid_id"


class RequestTooLarge(BrokerlinkError):
    status_code = 413
    code = "request_too_large"
