"""Application errors. Each carries the HTTP status and stable code the API answers with.

    BrokerlinkError                  # message, status_code, code
    ├── ConfigurationError           # settings that cannot work (500, raised at start-up)
    ├── NotFoundError                # 404
    └── ValidationError              # 422: bad input, names the field

Provider failures are `brokerlink.domain.errors.ProviderError`; the API maps both families.
"""

__all__ = [
    "PRINTABLE",
    "BrokerlinkError",
    "ConfigurationError",
    "NotFoundError",
    "ValidationError",
]

# A pattern for names and symbols in requests: no control characters (no NUL, which PostgreSQL
# text cannot hold, no line breaks in what ends up in logs).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


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
