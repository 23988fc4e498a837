"""Fault injection shared by the provider sandboxes.

A request gets faults from two places: the `X-Sandbox-Fault` header (one request) and the
app-wide `FaultConfig` (every matching request). `FaultInjector.decide` merges them into a
`FaultDecision`; each sandbox renders the decided error status in its own error format.

Header grammar, `;`-separated directives::

    latency=<seconds>          sleep before answering
    status=<code>[@<prob>]     answer this error status (with probability <prob>, default 1)
    retry-after=<seconds>      Retry-After on an injected 429 (or any injected status)
    timeout                    sleep far beyond any client timeout before answering
    malformed                  200 with a truncated JSON body
    malformed=shape            valid JSON of the wrong shape
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FAULT_HEADER",
    "FaultConfig",
    "FaultDecision",
    "FaultDirectives",
    "FaultHeaderError",
    "FaultInjector",
    "Malformed",
    "parse_fault_header",
]

FAULT_HEADER = "X-Sandbox-Fault"
DEFAULT_TIMEOUT_SECONDS = 3600.0

Malformed = Literal["truncate", "shape"]


class FaultHeaderError(ValueError):
    """The fault header does not follow the grammar."""


class FaultConfig(BaseModel):
    """App-wide faults, set with `PUT /sandbox/faults`."""

    model_config = ConfigDict(extra="forbid")

    latency: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=500, ge=400, le=599)
    # The next len(fail_next) eligible requests fail with these statuses, in order.
    fail_next: list[int] = Field(default_factory=list)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    retry_after: float | None = Field(default=None, ge=0)
    path_pattern: str | None = None
    seed: int | None = None

    @field_validator("fail_next")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 400 <= status <= 599:
                raise ValueError(f"fail_next status {status} is not an HTTP error status")
        return value

    @field_validator("path_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"path_pattern is not a valid regex: {e}") from e
        return value


@dataclass(frozen=True)
class FaultDirectives:
    """What one `X-Sandbox-Fault` header asks for."""

    latency: float = 0.0
    status: int | None = None
    probability: float = 1.0
    retry_after: float | None = None
    timeout: bool = False
    malformed: Malformed | None = None


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request. `status` None means answer normally."""

    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    timeout: float | None = None
    malformed: Malformed | None = None

    @property
    def is_noop(self) -> bool:
        return self == FaultDecision()


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultHeaderError(f"{name} needs a number, got {raw!r}") from None
    if value < 0:
        raise FaultHeaderError(f"{name} must not be negative")
    return value


def parse_fault_header(value: str) -> FaultDirectives:
    """Parse the `X-Sandbox-Fault` header; raises FaultHeaderError on bad input."""
    latency = 0.0
    status: int | None = None
    probability = 1.0
    retry_after: float | None = None
    timeout = False
    malformed: Malformed | None = None
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, arg = part.partition("=")
        name, arg = name.strip().lower(), arg.strip()
        if name == "latency":
            latency = _number(name, arg)
        elif name == "status":
            code, _, prob = arg.partition("@")
            try:
                status = int(code)
            except ValueError:
                raise FaultHeaderError(f"status needs an integer, got {code!r}") from None
            if not 400 <= status <= 599:
                raise FaultHeaderError(f"status {status} is not an HTTP error status")
            if prob:
                probability = _number("probability", prob)
                if probability > 1:
                    raise FaultHeaderError("probability must be between 0 and 1")
        elif name == "retry-after":
            retry_after = _number(name, arg)
        elif name == "timeout":
            timeout = True
        elif name == "malformed":
            if arg in ("", "truncate"):
                malformed = "truncate"
            elif arg == "shape":
                malformed = "shape"
            else:
                raise FaultHeaderError(f"malformed takes no value or 'shape', got {arg!r}")
        else:
            raise FaultHeaderError(f"unknown fault directive {name!r}")
    return FaultDirectives(latency, status, probability, retry_after, timeout, malformed)


class FaultInjector:
    """Holds the app-wide FaultConfig and decides the faults of each request."""

    def __init__(
        self, config: FaultConfig | None = None, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.config = FaultConfig()
        self._rng = random.Random()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config.model_copy(deep=True)
        self._rng = random.Random(config.seed)

    def reset(self) -> None:
        self.configure(FaultConfig())

    def _applies(self, path: str) -> bool:
        pattern = self.config.path_pattern
        return pattern is None or re.search(pattern, path) is not None

    def decide(
        self, path: str, header: str | None, *, directives: FaultDirectives | None = None
    ) -> FaultDecision:
        """Merge the header's directives with the app-wide config for a request to `path`.

        Pass already-parsed `directives` to skip parsing `header`. Header directives win.
        """
        d = (
            directives
            if directives is not None
            else (parse_fault_header(header) if header else FaultDirectives())
        )
        latency = d.latency
        status: int | None = None
        retry_after = d.retry_after
        timeout = d.timeout
        malformed = d.malformed
        if d.status is not None and (d.probability >= 1 or self._rng.random() < d.probability):
            status = d.status
        cfg = self.config
        if self._applies(path):
            latency = latency or cfg.latency
            if retry_after is None:
                retry_after = cfg.retry_after
            if status is None and cfg.fail_next:
                status = cfg.fail_next.pop(0)
            if status is None and cfg.error_rate and self._rng.random() < cfg.error_rate:
                status = cfg.error_status
            if not timeout and cfg.timeout_rate and self._rng.random() < cfg.timeout_rate:
                timeout = True
            if malformed is None and cfg.malformed_rate and self._rng.random() < cfg.malformed_rate:
                malformed = "truncate"
        return FaultDecision(
            latency=latency,
            status=status,
            retry_after=retry_after,
            timeout=self.timeout_seconds if timeout else None,
            malformed=malformed,
        )
