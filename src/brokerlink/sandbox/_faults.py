"""Fault injection shared by the provider sandboxes.

A request gets faults from two places: the `X-Sandbox-Fault` header (one request) and the
app-wide `FaultConfig` (every matching request). `FaultInjector.decide` merges them into a
`FaultDecision`; each sandbox renders the decided error status in its own error format.

Header grammar, `;`-separated directives::

    latency=<seconds>          sleep before answering
    status=<code>[@<prob>]     answer this error status (with probability <prob>, default 1)
    retry-after=<seconds>      Retry-After on an injected 429 (or any injected status)
    timeout                    sleep far beyond any client timeout, then answer the injected
                               status (504 without one); the request is never processed
    after                      process the request first (state changed, billed), then answer
                               the injected status or time out instead of the real answer
    malformed                  200 with a truncated JSON body
    malformed=shape            valid JSON of the wrong shape

Without `after` an injected status or timeout replaces the request: nothing is processed. With
it the answer is lost after the work is done, the case a client cannot tell from the first.
The app-wide `FaultConfig.after` does the same for the faults the config injects.
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
# What a timed-out request is finally answered with, when no status was injected.
TIMEOUT_STATUS = 504

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
    # The injected status or timeout comes after the request was processed (its answer lost).
    after: bool = False
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
    after: bool = False


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request. `status` and `timeout` None mean answer normally.

    `after` places the injected status or timeout after the request was processed.
    """

    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    timeout: float | None = None
    malformed: Malformed | None = None
    after: bool = False

    @property
    def is_noop(self) -> bool:
        return self == FaultDecision()

    @property
    def fails_before(self) -> bool:
        """An injected status or timeout replaces the request: it is never processed."""
        return not self.after and (self.status is not None or self.timeout is not None)

    @property
    def fails_after(self) -> bool:
        """The request is processed, then its answer is replaced by the injected failure."""
        return self.after and (self.status is not None or self.timeout is not None)

    @property
    def failure_status(self) -> int:
        """The status a failing request is finally answered with."""
        return self.status if self.status is not None else TIMEOUT_STATUS


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
    after = False
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
        elif name == "after":
            if arg:
                raise FaultHeaderError(f"after takes no value, got {arg!r}")
            after = True
        elif name == "malformed":
            if arg in ("", "truncate"):
                malformed = "truncate"
            elif arg == "shape":
                malformed = "shape"
            else:
                raise FaultHeaderError(f"malformed takes no value or 'shape', got {arg!r}")
        else:
            raise FaultHeaderError(f"unknown fault directive {name!r}")
    if after and status is None and not timeout:
        raise FaultHeaderError("after needs a status or timeout to inject")
    return FaultDirectives(latency, status, probability, retry_after, timeout, malformed, after)


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
        # The header's own failure decides `after`; one the config adds follows the config.
        after = d.after if (status is not None or timeout) else False
        cfg = self.config
        if self._applies(path):
            latency = latency or cfg.latency
            if retry_after is None:
                retry_after = cfg.retry_after
            from_header = status is not None or timeout
            if status is None and cfg.fail_next:
                status = cfg.fail_next.pop(0)
            if status is None and cfg.error_rate and self._rng.random() < cfg.error_rate:
                status = cfg.error_status
            if not timeout and cfg.timeout_rate and self._rng.random() < cfg.timeout_rate:
                timeout = True
            if malformed is None and cfg.malformed_rate and self._rng.random() < cfg.malformed_rate:
                malformed = "truncate"
            if not from_header and (status is not None or timeout):
                after = cfg.after
        return FaultDecision(
            latency=latency,
            status=status,
            retry_after=retry_after,
            timeout=self.timeout_seconds if timeout else None,
            malformed=malformed,
            after=after,
        )
