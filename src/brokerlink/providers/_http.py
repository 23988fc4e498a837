"""The one request pipeline every provider call goes through, and the retry decision it uses.

`Pipeline.send(call)` does, per attempt: the limiter windows (`providers/limits.py`), the
request (built fresh by the vendor, so each attempt is signed anew), the per-attempt timeout,
one structured log event (operation, status, latency, attempt, request id; never a URL, body or
header, which may carry secrets), the retry decision and the backoff; and once the call has
ended, one `provider.call` event for the whole call (provider, institution, operation, our
request id and the provider's, latency, result, error code, cost tag) whose `CallRecord` goes to
the injected `Observer`'s sinks (`providers/observe.py`). A vendor client adds only
what is its own, as a `Dialect`: signing and request shapes, and what an answer's body and
headers say (error code, request id, Retry-After, a used-up window, a "try again" code).

The decision is pure (`RetryPolicy.should_retry`, given the operation's `Kind` from
`providers/operations.py`) and the sleep is computed separately (`RetryPolicy.backoff`), so tests
pin both without sleeping.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.request import getproxies, proxy_bypass

import httpx

from brokerlink.log import get_logger
from brokerlink.providers.limits import Limiter, LimiterUnavailable, RateLimiter, Stamp
from brokerlink.providers.observe import CallRecord, Observer, current_context
from brokerlink.providers.operations import Kind

__all__ = [
    "NOT_SENT_ERRORS",
    "RETRYABLE_ERRORS",
    "RETRYABLE_STATUSES",
    "Answer",
    "Call",
    "Dialect",
    "Pipeline",
    "RateLimiter",
    "RetryPolicy",
    "Stamp",
    "default_transport",
    "parse_retry_after",
]

# 408 and 425 are the server saying "try again"; 429 is the limiter; 5xx are the server's trouble.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

# Failures that prove the request never left: no connection was made, or none was free. Safe to
# send again whatever the operation costs.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

# Network failures where the request may have reached the server and its answer was lost.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def parse_retry_after(
    headers: Mapping[str, str], *, now: float | None = None, reset_headers: tuple[str, ...] = ()
) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date), else from a reset header.

    Reset headers carry either seconds-until-reset or an epoch timestamp; a value larger than a
    day is read as an epoch.
    """
    current = time.time() if now is None else now
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, when.timestamp() - current)
    for name in reset_headers:
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if number > 86400:
            return max(0.0, number - current)
        return max(0.0, number)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait. `max_retries` counts retries, not attempts."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25  # fraction of the delay added at random
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def should_retry(
        self,
        outcome: httpx.Response | BaseException,
        attempt: int,
        kind: Kind,
        *,
        transient_answer: bool = False,
    ) -> bool:
        """Whether attempt number `attempt` (1-based) of a `kind` operation that ended in
        `outcome` deserves another.

        A request that never left is sent again whatever its kind. Otherwise only idempotent
        operations are: on a retryable status, on `transient_answer` (the provider's error body
        says "try again", e.g. Plaid's PRODUCT_NOT_READY), and on a timeout or network error.
        A billed or single-use request that may have reached the provider is never repeated.
        """
        if attempt > self.max_retries:
            return False
        if isinstance(outcome, NOT_SENT_ERRORS):
            return True
        if kind is not Kind.IDEMPOTENT:
            return False
        if isinstance(outcome, httpx.Response):
            return outcome.status_code in self.retry_statuses or transient_answer
        return isinstance(outcome, RETRYABLE_ERRORS)

    def backoff(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to sleep before the retry that follows attempt `attempt`.

        A server's `Retry-After` wins (capped at `max_delay`); otherwise exponential from
        `base_delay`, capped, plus jitter.
        """
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        delay = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return delay + self.add_jitter(delay)

    def add_jitter(self, delay: float) -> float:
        return float(random.uniform(0, delay * self.jitter)) if self.jitter else 0.0


@dataclass(frozen=True)
class Call:
    """One operation to send: how to build its request, and the windows it counts in (by role,
    e.g. `"client"` and `"account"`, which a `Dialect` names when an answer holds one)."""

    operation: str
    event: str
    kind: Kind
    build: Callable[[], httpx.Request]
    limiters: Mapping[str, Limiter] = field(default_factory=dict)


@dataclass
class Answer:
    """What a vendor reads off one answer, whatever its status."""

    response: httpx.Response
    payload: Any = None  # the decoded JSON body, None when empty or not JSON
    parse_error: ValueError | None = None
    log: Mapping[str, object] = field(default_factory=dict)  # request id, error code
    transient: bool = False  # the body says "try again" (Plaid's PRODUCT_NOT_READY...)
    retry_after: float | None = None
    holds: Mapping[str, float] = field(default_factory=dict)  # role -> seconds the window is full
    renew: bool = False  # the app's own credentials were refused: they may have been rotated


class Dialect(Protocol):
    """The vendor's part of the pipeline: reading answers and choosing typed errors."""

    def read(self, call: Call, response: httpx.Response) -> Answer: ...

    def failure(self, call: Call, answer: Answer) -> Exception:
        """The typed error for a non-2xx answer that is not retried."""
        ...

    def unreachable(self, call: Call, exc: Exception) -> Exception:
        """The typed error for a request that got no answer (or could not be sent: its limiter
        was unavailable) and is not retried."""
        ...

    async def renew(self) -> bool:
        """Re-read the app's credentials after an answer flagged `renew`; True when they
        changed (the call is then sent once more, outside the retry rule)."""
        ...


_log = get_logger("brokerlink.providers")


@dataclass
class _Trace:
    """What the attempts of one call saw, for its `CallRecord`."""

    attempts: int = 0
    status: int | None = None
    provider_request_id: str | None = None
    error_code: str | None = None
    throttled: int = 0


class Pipeline:
    """Sends `Call`s through one transport with one retry policy; see the module docstring."""

    def __init__(
        self,
        dialect: Dialect,
        transport: httpx.AsyncBaseTransport,
        *,
        retry: RetryPolicy,
        timeout: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: Any = None,
        provider: str | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.dialect = dialect
        self.provider = provider
        self.observer = observer if observer is not None else Observer()
        self.transport = transport
        self.retry = retry
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._sleep = sleep
        self._log = logger if logger is not None else _log
        self.closed = False

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self.transport.aclose()

    async def send(self, call: Call) -> Answer:
        """The answer to `call` once it is a 2xx; the dialect's typed error otherwise."""
        trace = _Trace()
        started = time.perf_counter()
        try:
            answer = await self._attempts(call, trace)
        except BaseException as exc:
            self._finish(call, trace, started, exc)
            raise
        self._finish(call, trace, started, None)
        return answer

    def _finish(
        self, call: Call, trace: _Trace, started: float, error: BaseException | None
    ) -> None:
        context = current_context()
        error_code = None if error is None else getattr(error, "code", None) or trace.error_code
        record = CallRecord(
            provider=self.provider or call.event.split(".", 1)[0],
            operation=call.operation,
            event=call.event,
            request_id=uuid.uuid4().hex,
            provider_request_id=trace.provider_request_id,
            latency_ms=_since(started),
            result="ok" if error is None else type(error).__name__,
            error_code=None if error_code is None else str(error_code),
            status=trace.status,
            attempts=trace.attempts,
            throttled=trace.throttled,
            cost=self.observer.cost(call.event, billed=call.kind is Kind.BILLED),
            institution=context.institution,
            user_id=context.user_id,
            occurred_at=datetime.now(UTC),
        )
        emit = self._log.info if record.ok else self._log.warning
        emit(
            "provider.call",
            provider=record.provider,
            institution=record.institution,
            operation=record.operation,
            request_id=record.request_id,
            provider_request_id=record.provider_request_id,
            latency_ms=record.latency_ms,
            result=record.result,
            error_code=record.error_code,
            status=record.status,
            attempts=record.attempts,
            cost=None if record.cost is None else record.cost.as_log(),
            user_id=record.user_id,
        )
        try:
            self.observer.observe(record)
        except Exception as exc:  # noqa: BLE001 - a sink's failure never fails the call
            self._log.warning("provider.call.unobserved", error=type(exc).__name__)

    async def _attempts(self, call: Call, trace: _Trace) -> Answer:
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            trace.attempts += 1
            try:
                stamps = [(lim, await lim.acquire()) for lim in call.limiters.values()]
            except LimiterUnavailable as exc:
                # Nothing was sent; a technical failure like an unreachable provider.
                trace.status, trace.error_code = None, type(exc).__name__
                self._log.warning(
                    call.event,
                    operation=call.operation,
                    status=None,
                    error=type(exc).__name__,
                    attempt=attempt,
                    will_retry=False,
                )
                raise self.dialect.unreachable(call, exc) from exc
            request = call.build()
            request.extensions.setdefault("timeout", self._timeouts)
            started = time.perf_counter()
            try:
                response = await self._exchange(request)
            except httpx.HTTPError as exc:
                await _settle(stamps)
                trace.status, trace.error_code = None, type(exc).__name__
                again = self.retry.should_retry(exc, attempt, call.kind)
                self._log.warning(
                    call.event,
                    operation=call.operation,
                    status=None,
                    error=type(exc).__name__,
                    latency_ms=_since(started),
                    attempt=attempt,
                    will_retry=again,
                )
                if again:
                    await self._sleep(self.retry.backoff(attempt))
                    continue
                raise self.dialect.unreachable(call, exc) from exc
            await _settle(stamps)
            latency_ms = _since(started)
            answer = self.dialect.read(call, response)
            for role, seconds in answer.holds.items():
                if (limiter := call.limiters.get(role)) is not None:
                    await limiter.penalise(seconds)
            status = response.status_code
            fields = {"operation": call.operation, "status": status, **answer.log}
            trace.status = status
            trace.provider_request_id = _text(answer.log.get("request_id"))
            trace.error_code = _text(answer.log.get("error_code") or answer.log.get("code"))
            trace.throttled += status == 429
            if 200 <= status < 300:
                self._log.info(call.event, latency_ms=latency_ms, attempt=attempt, **fields)
                return answer
            if answer.renew and not renewed:
                renewed = True
                if await self.dialect.renew():
                    # Outside the retry rule: the refusal processed nothing, so even an order
                    # may go again, and the attempt does not count.
                    self._log.info(
                        call.event, operation=call.operation, credentials="rotated", attempt=attempt
                    )
                    attempt -= 1
                    continue
            again = self.retry.should_retry(
                response, attempt, call.kind, transient_answer=answer.transient
            )
            self._log.warning(
                call.event, latency_ms=latency_ms, attempt=attempt, will_retry=again, **fields
            )
            if again:
                await self._sleep(self.retry.backoff(attempt, retry_after=answer.retry_after))
                continue
            raise self.dialect.failure(call, answer)

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        if self.closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        # Straight to the transport: the providers set no cookies and answer no redirects, so
        # httpx.AsyncClient's cookie, auth and redirect machinery would be pure cost here.
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response


async def _settle(stamps: list[tuple[Limiter, Stamp | None]]) -> None:
    for limiter, stamp in stamps:
        await limiter.settle(stamp)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def default_transport(url: str) -> httpx.AsyncBaseTransport:
    """httpx's own pooled transport, through the proxy the environment names for this URL
    (`HTTPS_PROXY`, `ALL_PROXY`, minus `NO_PROXY`), as httpx.AsyncClient would."""
    target = httpx.URL(url)
    proxies = getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if proxy and not proxy_bypass(target.host):
        return httpx.AsyncHTTPTransport(proxy=proxy)
    return httpx.AsyncHTTPTransport()
