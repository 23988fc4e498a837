"""Provider webhooks received: verify, record, act, answer.

    POST /webhooks/snaptrade, POST /webhooks/plaid            (routes.py)
      1. verify      the providers' verifiers; `seen` is the webhook events table
      2. record      `accepted`, once per (provider, event id): the table's unique key is the
                     replay guard, so of two racing deliveries one goes on, the other is refused;
                     a Plaid event also once per body within Plaid's retry window (below)
      3. act         a status change inline; a sync as a follow-up job on the app's queue,
                     which marks the event `handled` or `failed` once it ran
      4. answer 200  without waiting for the follow-up

Plaid's bodies carry no id and Plaid signs each retry afresh (a new `iat`, so a new event id)
over the same bytes. So a verified Plaid delivery whose body (`body_sha256`) was accepted
before, signed at most `RETRY_WINDOW` (12 h, the span of Plaid's retries) before this one, is
that event delivered again, refused as a replay exactly like a seen id. The price: two distinct
Plaid events with byte-identical bodies within 12 hours count as one (an Item's HOLDINGS
DEFAULT_UPDATE often is: it only carries counts); what the second announced is picked up by the
schedule, whose missing-webhook and catch-all syncs come within a day.

A verified event of a type this product does not know (providers add types) is recorded as
`ignored`, answered 200 and acted on in no way; its metric's type label is `other`, never the
sender's name, so the label stays bounded.

A forged, stale, replayed or malformed event is refused (`WebhookRefused`: 401, 409, 400),
logged as `webhook.refused` with the provider and the code only (never the body: it is not
trusted), recorded as `refused:<code>` under a synthetic event id (the body's SHA-256, so a
forged body can never take a real event's id), and changes nothing else. When verification
cannot be done right now (Plaid's key endpoint down) or the follow-up cannot be queued, the
answer is 503, so the provider delivers again later. An event whose handling failed (`failed`)
is taken up again by the provider's next delivery of it (a Plaid retry included: under the
failed delivery's id); a handled one is a replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import TechnicalError
from brokerlink.errors import BrokerlinkError
from brokerlink.log import get_logger
from brokerlink.models.webhook_event import EVENT_TYPE_LENGTH
from brokerlink.observability import metrics
from brokerlink.providers.plaid import PlaidConnector
from brokerlink.providers.plaid.webhooks import RETRY_WINDOW, PlaidWebhookVerifier
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.providers.snaptrade.webhooks import (
    SnapTradeWebhookVerifier,
    UnknownSnapTradeWebhook,
)
from brokerlink.providers.webhooks import WebhookRefused
from brokerlink.repositories.webhook_events import WebhookEventRepository
from brokerlink.sync.jobs import Jobs, WebhookRef
from brokerlink.sync.schedule import due_now
from brokerlink.webhooks.actions import Action
from brokerlink.webhooks.plaid import PlaidEvents, event_type
from brokerlink.webhooks.snaptrade import SnapTradeEvents

__all__ = [
    "OTHER_TYPE",
    "WebhookFollowupNotQueued",
    "WebhookReceipt",
    "WebhookReceiver",
    "WebhookVerificationUnavailable",
    "WebhooksNotConfigured",
    "refused_event_id",
]

_log = get_logger("brokerlink.webhooks")

# The metric's type label of an event of a type this product does not know.
OTHER_TYPE = "other"


class WebhookVerificationUnavailable(BrokerlinkError):
    """The webhook could not be verified now (the provider's key endpoint failed)."""

    status_code = 503
    code = "webhook_verification_unavailable"


class WebhookFollowupNotQueued(BrokerlinkError):
    """The event was verified but its follow-up could not be queued (the broker is down)."""

    status_code = 503
    code = "webhook_followup_not_queued"


class WebhooksNotConfigured(BrokerlinkError):
    """No client of this provider here: nothing can verify its webhooks."""

    status_code = 404
    code = "not_found"


class WebhookReceipt(BaseModel):
    """The answer to a provider: the event and what became of it (`handled`, `queued`:
    a follow-up job runs it, `ignored`: of a type this product does not know, `failed`: it was
    verified and recorded, and cannot be acted on)."""

    event_id: str
    result: str


@dataclass(frozen=True)
class _Verified:
    """A verified event as it is recorded. `act` is None for a type this product does not know.
    `copies_since`: the event has no id of its own (Plaid's), so an accepted delivery of the
    same body signed since then is this event again."""

    event_id: str
    event_type: str
    event_at: datetime | None
    body_sha256: str
    act: Callable[[], Awaitable[Action]] | None
    copies_since: datetime | None = None

    @property
    def label(self) -> str:
        """The metric's type label: bounded, so never the sender's own name for a type."""
        return self.event_type if self.act is not None else OTHER_TYPE


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def refused_event_id(body: bytes) -> str:
    """The id a refused webhook is recorded under: its body's SHA-256, never the id it claims."""
    return f"sha256:{_digest(body)}"


class WebhookReceiver:
    """Receives both providers' webhooks for one app; meant to live as long as the app (the
    Plaid verifier caches Plaid's keys)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: Jobs,
        *,
        clock: Callable[[], datetime],
        snaptrade: SnapTradeConnector | None,
        plaid: PlaidConnector | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.queue = queue
        self.clock = clock
        self._snaptrade = snaptrade
        self._snaptrade_events = (
            None if snaptrade is None else SnapTradeEvents(sessionmaker, snaptrade, clock=clock)
        )
        self._plaid_events = None if plaid is None else PlaidEvents(sessionmaker, plaid)
        self._plaid_verifier = (
            None
            if plaid is None
            else PlaidWebhookVerifier(
                plaid.client.webhook_verification_key_get,
                clock=clock,
                seen=lambda event_id: self._seen(Provider.PLAID, event_id),
            )
        )

    # -- the two providers ------------------------------------------------------------------

    async def snaptrade(self, body: bytes, headers: Mapping[str, str]) -> WebhookReceipt:
        if self._snaptrade is None or self._snaptrade_events is None:
            raise WebhooksNotConfigured("SnapTrade is not configured here")
        client, events = self._snaptrade.client, self._snaptrade_events

        async def verify() -> _Verified:
            # Read per delivery: the consumer key follows the app credentials' rotation.
            verifier = SnapTradeWebhookVerifier(
                await client.consumer_key(),
                clock=self.clock,
                seen=lambda event_id: self._seen(Provider.SNAPTRADE, event_id),
            )
            event = await verifier.verify(body, headers)
            if isinstance(event, UnknownSnapTradeWebhook):
                name = event.event_type[:EVENT_TYPE_LENGTH]
                return _Verified(event.event_id, name, event.occurred_at, _digest(body), None)
            return _Verified(
                event.event_id,
                event.event_type.value,
                event.occurred_at,
                _digest(body),
                lambda: events.act(event),
            )

        return await self._receive(Provider.SNAPTRADE, body, verify)

    async def plaid(self, body: bytes, headers: Mapping[str, str]) -> WebhookReceipt:
        if self._plaid_verifier is None or self._plaid_events is None:
            raise WebhooksNotConfigured("Plaid is not configured here")
        verifier, events = self._plaid_verifier, self._plaid_events

        async def verify() -> _Verified:
            event = await verifier.verify(body, headers)
            return _Verified(
                event.event_id,
                event_type(event)[:EVENT_TYPE_LENGTH],
                event.signed_at,
                event.body_sha256,
                (lambda: events.act(event)) if event.known else None,
                copies_since=event.signed_at - RETRY_WINDOW,
            )

        return await self._receive(Provider.PLAID, body, verify)

    # -- the one flow -----------------------------------------------------------------------

    async def _receive(
        self, provider: Provider, body: bytes, verify: Callable[[], Awaitable[_Verified]]
    ) -> WebhookReceipt:
        try:
            verified = await verify()
        except WebhookRefused as refused:
            await self._refuse(provider, body, refused)
            raise
        except TechnicalError as error:
            _log.warning("webhook.unverifiable", provider=provider.value, error=str(error))
            raise WebhookVerificationUnavailable(
                f"the {provider.value} webhook cannot be verified now; deliver it again later"
            ) from error
        event_id = await self._accept(provider, verified)
        if event_id is None:
            # Accepted before: a delivery of the same body (Plaid's retry), or another delivery
            # of the event that got past `seen` at the same moment and won.
            replay = WebhookRefused("replayed", "this webhook was already received")
            await self._refuse(provider, body, replay)
            raise replay
        verified = replace(verified, event_id=event_id)
        log = _log.bind(provider=provider.value, event_id=event_id)
        if verified.act is None:
            action, result = Action(note="a type this product does not know"), "ignored"
        else:
            try:
                action = await verified.act()
                result = await self._settle(provider, verified, action)
            except Exception as error:
                await self._mark(provider, event_id, "failed", error=repr(error))
                metrics.webhook_event(provider.value, verified.label, "failed")
                log.error("webhook.failed", event_type=verified.event_type, error=repr(error))
                raise
        metrics.webhook_event(provider.value, verified.label, result)
        log.info(
            "webhook.received",
            event_type=verified.event_type,
            result=result,
            connection_id=action.connection_id,
            note=action.note,
        )
        return WebhookReceipt(event_id=verified.event_id, result=result)

    async def _settle(self, provider: Provider, verified: _Verified, action: Action) -> str:
        event_id, cid, aid = verified.event_id, action.connection_id, action.account_id
        if not action.follow_up or cid is None:
            result = "failed" if action.error else "handled"
            await self._mark(
                provider, event_id, result, error=action.error, connection_id=cid, account_id=aid
            )
            return result
        # What the event concerns is written before the job exists: the job marks the outcome,
        # and nothing here may overwrite it afterwards.
        await self._mark(provider, event_id, "accepted", connection_id=cid, account_id=aid)
        ref = WebhookRef(provider, verified.event_id)
        if not await self.queue.webhook_followup(cid, ref):
            await self._mark(provider, verified.event_id, "failed", error="not queued")
            # The provider delivers it again; meanwhile the schedule's next claim takes it.
            await due_now(self.sessionmaker, [cid], now=self.clock())
            raise WebhookFollowupNotQueued(
                "the follow-up of this webhook could not be queued; deliver it again later"
            )
        return "queued"

    # -- the webhook events table -----------------------------------------------------------

    async def _seen(self, provider: Provider, event_id: str) -> bool:
        """Accepted before, and not failed (a failed event is taken up again)."""
        async with transaction(self.sessionmaker) as session:
            found = await WebhookEventRepository.from_session(session).get(provider, event_id)
            return found is not None and found.result != "failed"

    async def _accept(self, provider: Provider, verified: _Verified) -> str | None:
        """Record the event (`accepted`, or at once `ignored`); the id it is recorded under, or
        None when it was accepted before. That id is its own, or, for a delivery of a body whose
        earlier delivery failed, that delivery's: taken up again, as a failed event id is."""
        async with transaction(self.sessionmaker) as session:
            repo = WebhookEventRepository.from_session(session)
            event_id = verified.event_id
            if verified.copies_since is not None:
                # Held to the commit: of two copies racing, the second sees the first recorded.
                await repo.lock_body(provider, verified.body_sha256)
                copies = await repo.copies(
                    provider, verified.body_sha256, signed_since=verified.copies_since
                )
                if any(copy.result != "failed" for copy in copies):
                    return None
                if copies:
                    event_id = copies[-1].event_id
            if event_id == verified.event_id and await repo.record(
                provider=provider,
                event_id=event_id,
                event_type=verified.event_type,
                event_at=verified.event_at,
                received_at=self.clock(),
                result="accepted" if verified.act is not None else "ignored",
                body_sha256=verified.body_sha256,
            ):
                return event_id
            retaken = await repo.retake(
                provider=provider, event_id=event_id, received_at=self.clock()
            )
            return event_id if retaken else None

    async def _mark(
        self,
        provider: Provider,
        event_id: str,
        result: str,
        *,
        error: str | None = None,
        connection_id: int | None = None,
        account_id: int | None = None,
    ) -> None:
        async with transaction(self.sessionmaker) as session:
            await WebhookEventRepository.from_session(session).mark(
                provider=provider,
                event_id=event_id,
                result=result,
                error=error,
                connection_id=connection_id,
                account_id=account_id,
            )

    async def _refuse(self, provider: Provider, body: bytes, refused: WebhookRefused) -> None:
        _log.warning("webhook.refused", provider=provider.value, code=refused.reason)
        metrics.webhook_event(provider.value, "unverified", f"refused:{refused.reason}")
        async with transaction(self.sessionmaker) as session:
            # The body is not trusted: no type, no time, no id of its own. The same refused
            # body twice is one row.
            await WebhookEventRepository.from_session(session).record(
                provider=provider,
                event_id=refused_event_id(body),
                event_type="unverified",
                event_at=None,
                received_at=self.clock(),
                result=f"refused:{refused.reason}",
                body_sha256=_digest(body),
            )
