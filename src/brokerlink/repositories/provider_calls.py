from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from brokerlink.db.types import utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import ProviderCall
from brokerlink.repositories._base import Repository

__all__ = ["ProviderCallLogRepository"]


class ProviderCallLogRepository(Repository):
    """A log of every provider call, for latency and error-rate views per institution."""

    async def record(
        self,
        *,
        provider: Provider,
        operation: str,
        latency_ms: int,
        result: str,
        institution: str | None = None,
        call_id: str | None = None,
        provider_request_id: str | None = None,
        error_code: str | None = None,
        cost_type: str | None = None,
        cost_amount: Decimal | None = None,
        status_code: int | None = None,
        user_id: int | None = None,
        at: datetime | None = None,
    ) -> ProviderCall:
        """One row as given (the pipeline's rows are written by `observability.CallRecorder`)."""
        call = ProviderCall(
            provider=provider,
            operation=operation,
            latency_ms=latency_ms,
            result=result,
            institution=institution,
            call_id=call_id,
            provider_request_id=provider_request_id,
            error_code=error_code,
            cost_type=cost_type,
            cost_amount=cost_amount,
            status_code=status_code,
            user_id=user_id,
            occurred_at=at or utcnow(),
        )
        self.session.add(call)
        await self.session.flush()
        return call

    async def recent(
        self,
        *,
        provider: Provider | None = None,
        institution: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[ProviderCall]:
        query = select(ProviderCall)
        if provider is not None:
            query = query.where(ProviderCall.provider == provider)
        if institution is not None:
            query = query.where(ProviderCall.institution == institution)
        if since is not None:
            query = query.where(ProviderCall.occurred_at >= since)
        query = query.order_by(ProviderCall.occurred_at.desc(), ProviderCall.id.desc())
        return list(await self.session.scalars(query.limit(limit)))
