"""Every provider call through the pipeline, against the SnapTrade sandbox: one `provider.call`
event with every field (redacted), one provider_call_log row written off the request path (SQLite
and PostgreSQL) with the same ids, error code and cost tag, and a bounded buffer that drops
rather than blocks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
import structlog
from sqlalchemy import select

from brokerlink.config import Settings
from brokerlink.domain.errors import ProviderError
from brokerlink.log import configure_logging
from brokerlink.models import ProviderCall
from brokerlink.observability import metrics
from brokerlink.observability.calls import CallRecorder
from brokerlink.observability.observer import call_observer
from brokerlink.operator.service import OperatorService
from brokerlink.providers.observe import CallRecord, Observer, call_context
from brokerlink.providers.plaid import PlaidClient
from brokerlink.providers.snaptrade import SnapTradeAuthError, SnapTradeClient
from brokerlink.repositories import UserRepository
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox.plaid import create_app as plaid_sandbox
from brokerlink.sandbox.snaptrade import create_app

CLIENT_ID = "OBS-TEST"
CONSUMER_KEY = "obs-consumer-key-not-a-secret-0123"
PLAID_ID, PLAID_SECRET = "obs-plaid-client", "obs-plaid-secret-not-a-secret"
EVENT_FIELDS = {
    "provider",
    "institution",
    "operation",
    "request_id",
    "provider_request_id",
    "latency_ms",
    "result",
    "error_code",
    "status",
    "attempts",
    "cost",
    "user_id",
}

pytestmark = pytest.mark.asyncio


class Seen:
    """A sink keeping the records it is told of."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def observe(self, record: CallRecord) -> None:
        self.records.append(record)


@pytest_asyncio.fixture
async def user_id(sessionmaker) -> int:
    async with sessionmaker() as session:
        user = await UserRepository.from_session(session).create(email="obs@example.com")
        await session.commit()
        return user.id


def _client(observer: Observer, app=None, **kw) -> SnapTradeClient:
    app = app or create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=0)
    return SnapTradeClient(
        CLIENT_ID,
        CONSUMER_KEY,
        base_url="http://sandbox.test",
        transport=httpx.ASGITransport(app=app),
        observer=observer,
        **kw,
    )


def _calls(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "provider.call"]


def _cost_total() -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "brokerlink_refresh_cost_usd_total", {"provider": "snaptrade"}
        )
        or 0.0
    )


class TestOneCall:
    async def test_one_event_with_every_field_and_one_row(self, sessionmaker, user_id):
        recorder = CallRecorder(sessionmaker)
        observer = call_observer(Settings(), recorder)
        with structlog.testing.capture_logs() as logs:
            async with _client(observer) as client:
                with call_context(institution="schwab", user_id=user_id):
                    await client.register_user("obs-user-1")
        (event,) = _calls(logs)
        assert EVENT_FIELDS <= set(event)
        assert event["provider"] == "snaptrade"
        assert event["institution"] == "schwab"
        assert event["operation"] == "Authentication_registerSnapTradeUser"
        assert event["result"] == "ok"
        assert event["error_code"] is None
        assert event["status"] == 200
        assert event["attempts"] == 1
        assert event["cost"] is None  # a free call
        assert event["user_id"] == user_id
        assert isinstance(event["latency_ms"], float)
        assert event["latency_ms"] >= 0
        assert len(event["request_id"]) == 32  # ours, per call
        assert event["provider_request_id"]  # the sandbox's X-Request-ID
        assert event["request_id"] != event["provider_request_id"]

        assert len(recorder) == 1  # buffered: nothing written on the call's path
        assert await recorder.flush() == 1
        async with sessionmaker() as session:
            (row,) = (await session.scalars(select(ProviderCall))).all()
        assert row.provider.value == "snaptrade"
        assert row.institution == "schwab"
        assert row.operation == "Authentication_registerSnapTradeUser"
        assert row.call_id == event["request_id"]  # ours: the row and the event are one call
        assert row.provider_request_id == event["provider_request_id"]
        assert row.result == "ok"
        assert (row.error_code, row.cost_type, row.cost_amount) == (None, None, None)
        assert row.status_code == 200
        assert row.user_id == user_id
        assert row.latency_ms == round(event["latency_ms"])

    async def test_a_refused_call_records_the_typed_error_and_the_provider_code(self, sessionmaker):
        recorder = CallRecorder(sessionmaker)
        with structlog.testing.capture_logs() as logs:
            async with _client(call_observer(Settings(), recorder)) as client:
                await client.register_user("obs-user-2")
                with pytest.raises(SnapTradeAuthError) as refused:
                    await client.list_accounts("obs-user-2", "not-the-secret")
        failed = _calls(logs)[-1]
        assert failed["result"] == type(refused.value).__name__ == "UserSecretInvalid"
        assert failed["error_code"] == refused.value.code is not None
        assert failed["status"] == 401
        await recorder.flush()
        async with sessionmaker() as session:
            rows = (await session.scalars(select(ProviderCall).order_by(ProviderCall.id))).all()
        assert [r.result for r in rows] == ["ok", "UserSecretInvalid"]
        assert [(r.call_id, r.error_code) for r in rows] == [
            (e["request_id"], e["error_code"]) for e in _calls(logs)
        ]
        assert rows[-1].error_code == str(refused.value.code)
        # The operator dashboard counts "ok" rows as successes and lists the others as errors.
        async with sessionmaker() as session:
            summary = await OperatorService(session).summary()
        rates = {
            (r.window, r.calls, r.ok) for r in summary.success_rates if r.provider == "snaptrade"
        }
        assert rates == {("1h", 2, 1), ("24h", 2, 1)}
        assert [
            (e.what, e.error) for e in summary.recent_errors if e.source == "provider_call"
        ] == [("AccountInformation_listUserAccounts", "UserSecretInvalid")]


class TestThrottled:
    async def test_a_429_on_the_way_is_counted_and_the_call_is_one_record(self, sessionmaker):
        app = create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=0)
        seen = Seen()
        labels = {"provider": "snaptrade", "operation": "AccountInformation_listUserAccounts"}
        name = "brokerlink_provider_rate_limited_total"
        before = metrics.REGISTRY.get_sample_value(name, labels) or 0.0
        slept: list[float] = []
        now = [time.time()]  # signed timestamps must stay in the sandbox's window

        async def sleep(seconds: float) -> None:  # the client's clock moves only here
            slept.append(seconds)
            now[0] += seconds

        observer = call_observer(Settings(), CallRecorder(sessionmaker), seen)
        async with _client(observer, app, sleep=sleep, clock=lambda: now[0]) as client:
            _, secret = await client.register_user("obs-user-5")
            app.state.sandbox.faults.configure(
                FaultConfig(fail_next=[429], retry_after=1, path_pattern="accounts$")
            )
            await client.list_accounts("obs-user-5", secret)
        listed = seen.records[-1]
        assert (listed.result, listed.attempts, listed.throttled) == ("ok", 2, 1)
        assert sum(slept) >= 1.0  # Retry-After honoured (on the fake clock)
        assert metrics.REGISTRY.get_sample_value(name, labels) == before + 1


class TestCost:
    async def test_a_billed_call_carries_its_cost_tag_and_counts_its_cost(self, sessionmaker):
        recorder = CallRecorder(sessionmaker)
        before = _cost_total()
        with structlog.testing.capture_logs() as logs:
            async with _client(call_observer(Settings(), recorder)) as client:
                _, secret = await client.register_user("obs-user-3")
                auth = await client.sandbox_create_connection("obs-user-3", secret, "SCHWAB")
                await client.refresh_authorization("obs-user-3", secret, auth["id"])
        by_operation = {e["operation"]: e for e in _calls(logs)}
        refresh = by_operation["Connections_refreshBrokerageAuthorization"]
        assert refresh["cost"] == {"type": "snaptrade.authorization.refresh", "amount": "0.05"}
        assert by_operation["Sandbox_createConnection"]["cost"] is None
        assert _cost_total() - before == pytest.approx(0.05)
        await recorder.flush()
        async with sessionmaker() as session:
            rows = {r.call_id: r for r in (await session.scalars(select(ProviderCall))).all()}
        billed = rows[refresh["request_id"]]
        assert (billed.cost_type, billed.cost_amount) == (
            "snaptrade.authorization.refresh",
            Decimal("0.05"),
        )
        free = rows[by_operation["Sandbox_createConnection"]["request_id"]]
        assert (free.cost_type, free.cost_amount) == (None, None)

    async def test_the_price_follows_the_settings(self, sessionmaker):
        settings = Settings(cost_snaptrade_refresh=Decimal("0.07"))
        observer = call_observer(settings, CallRecorder(sessionmaker))
        assert observer.cost("snaptrade.authorization.refresh", billed=True).amount == Decimal(
            "0.07"
        )
        assert observer.cost("plaid.investments.refresh", billed=True).amount == Decimal("0.12")
        assert observer.cost("snaptrade.accounts.list", billed=False) is None


class TestPlaid:
    async def test_a_plaid_refresh_costs_its_price_and_no_token_or_secret_is_logged(
        self, sessionmaker, capsys
    ):
        configure_logging("DEBUG", json=True)
        app = plaid_sandbox(
            client_id=PLAID_ID, secret=PLAID_SECRET, product_ready_delay=0, deliver_webhooks=False
        )
        recorder = CallRecorder(sessionmaker)
        async with PlaidClient(
            PLAID_ID,
            PLAID_SECRET,
            base_url="http://plaid.test",
            transport=httpx.ASGITransport(app=app),
            observer=call_observer(Settings(), recorder),
        ) as client:
            with call_context(institution="vanguard"):
                created = await client.sandbox_public_token_create("ins_115616")
                exchanged = await client.item_public_token_exchange(created["public_token"])
                await client.investments_refresh(exchanged["access_token"])
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        calls = {e["operation"]: e for e in lines if e["event"] == "provider.call"}
        assert calls["/investments/refresh"]["cost"] == {
            "type": "plaid.investments.refresh",
            "amount": "0.12",
        }
        assert calls["/item/public_token/exchange"]["cost"] is None
        assert {e["institution"] for e in calls.values()} == {"vanguard"}
        text = "\n".join(json.dumps(e) for e in lines)
        for leaked in (PLAID_SECRET, created["public_token"], exchanged["access_token"]):
            assert leaked not in text
        await recorder.flush()
        async with sessionmaker() as session:
            rows = (await session.scalars(select(ProviderCall).order_by(ProviderCall.id))).all()
        assert [(r.provider.value, r.operation, r.result) for r in rows] == [
            ("plaid", "/sandbox/public_token/create", "ok"),
            ("plaid", "/item/public_token/exchange", "ok"),
            ("plaid", "/investments/refresh", "ok"),
        ]
        # Plaid's request_id, from the body; ours, the event's.
        assert [(r.call_id, r.provider_request_id) for r in rows] == [
            (calls[r.operation]["request_id"], calls[r.operation]["provider_request_id"])
            for r in rows
        ]
        assert all(r.provider_request_id for r in rows)
        assert [(r.cost_type, r.cost_amount) for r in rows] == [
            (None, None),
            (None, None),
            ("plaid.investments.refresh", Decimal("0.12")),
        ]
        assert {r.institution for r in rows} == {"vanguard"}


class TestFaults:
    async def test_a_failed_call_keeps_the_providers_code_and_ids(self, sessionmaker):
        app = plaid_sandbox(
            client_id=PLAID_ID, secret=PLAID_SECRET, product_ready_delay=0, deliver_webhooks=False
        )
        recorder = CallRecorder(sessionmaker)
        with structlog.testing.capture_logs() as logs:
            async with PlaidClient(
                PLAID_ID,
                PLAID_SECRET,
                base_url="http://plaid.test",
                transport=httpx.ASGITransport(app=app),
                observer=call_observer(Settings(), recorder),
            ) as client:
                created = await client.sandbox_public_token_create("ins_115616")
                exchanged = await client.item_public_token_exchange(created["public_token"])
                app.state.sandbox.faults.configure(
                    FaultConfig(fail_next=[503], path_pattern="investments/refresh")
                )
                with pytest.raises(ProviderError) as failed:
                    await client.investments_refresh(exchanged["access_token"])
        event = _calls(logs)[-1]
        assert event["error_code"] == failed.value.code == "PLANNED_MAINTENANCE"
        await recorder.flush()
        async with sessionmaker() as session:
            row = (
                await session.scalars(select(ProviderCall).order_by(ProviderCall.id.desc()))
            ).first()
        assert row is not None
        assert (row.operation, row.result, row.status_code, row.error_code) == (
            "/investments/refresh",
            type(failed.value).__name__,
            503,
            "PLANNED_MAINTENANCE",
        )
        assert row.call_id == event["request_id"]
        assert row.provider_request_id == event["provider_request_id"] == failed.value.request_id
        assert row.provider_request_id  # the sandbox's error body carries Plaid's request_id
        # The tag of the billed operation, as the event has it (the metrics count accepted ones).
        assert event["cost"] == {"type": "plaid.investments.refresh", "amount": "0.12"}
        assert (row.cost_type, row.cost_amount) == ("plaid.investments.refresh", Decimal("0.12"))


class TestRedaction:
    async def test_no_secret_of_a_url_or_header_reaches_the_log(self, sessionmaker, capsys):
        configure_logging("DEBUG", json=True)
        async with _client(call_observer(Settings(), CallRecorder(sessionmaker))) as client:
            _, secret = await client.register_user("obs-user-4")
            await client.list_accounts("obs-user-4", secret)  # userSecret in the query
            with pytest.raises(SnapTradeAuthError):
                await client.list_accounts("obs-user-4", secret + "-wrong")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        assert [e["result"] for e in lines if e["event"] == "provider.call"] == [
            "ok",
            "ok",
            "UserSecretInvalid",
        ]
        text = "\n".join(json.dumps(e) for e in lines)
        for leaked in (secret, CONSUMER_KEY):  # the query's userSecret, the signing key
            assert leaked not in text


class TestBuffer:
    def _record(self, n: int) -> CallRecord:
        return CallRecord(
            provider="plaid",
            operation="/accounts/get",
            event="plaid.accounts.get",
            request_id=f"ours-{n}",
            provider_request_id=f"theirs-{n}",
            latency_ms=12.4,
            result="ok",
            error_code=None,
            status=200,
            attempts=1,
            throttled=0,
            cost=None,
            institution="chase",
            user_id=None,
            occurred_at=datetime.now(UTC),
        )

    async def test_a_full_buffer_drops_and_counts_instead_of_blocking(self, sessionmaker):
        recorder = CallRecorder(sessionmaker, capacity=2)
        name = "brokerlink_call_log_dropped_total"
        before = metrics.REGISTRY.get_sample_value(name) or 0.0
        for n in range(5):
            recorder.observe(self._record(n))
        assert (len(recorder), recorder.dropped) == (2, 3)
        assert metrics.REGISTRY.get_sample_value(name) - before == 3
        assert await recorder.flush() == 2

    async def test_batches_are_written_by_the_task_and_the_rest_on_shutdown(self, sessionmaker):
        recorder = CallRecorder(sessionmaker, batch=2, flush_seconds=3600)
        async with recorder.running():
            for n in range(5):
                recorder.observe(self._record(n))
        assert (len(recorder), recorder.written, recorder.dropped) == (0, 5, 0)
        async with sessionmaker() as session:
            rows = (await session.scalars(select(ProviderCall).order_by(ProviderCall.id))).all()
        assert [(r.call_id, r.provider_request_id) for r in rows] == [
            (f"ours-{n}", f"theirs-{n}") for n in range(5)
        ]
        assert {(r.institution, r.latency_ms, r.result) for r in rows} == {("chase", 12, "ok")}
