"""PlaidClient over MockTransport: headers, retries, paging, logging and redaction."""

import json

import httpx
import pytest
import structlog

from brokerlink.log import configure_logging
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import (
    PLAID_VERSION,
    InvalidAccessToken,
    LoginRequired,
    PlaidClient,
    PlaidMalformedResponse,
    PlaidRateLimited,
    PlaidUnavailable,
    ProductNotReady,
)
from brokerlink.providers.plaid.client import event_name

from .conftest import (
    ACCESS_TOKEN,
    CLIENT_ID,
    PUBLIC_TOKEN,
    SECRET,
    plaid_error,
    spec_holdings,
    spec_transactions,
)


@pytest.mark.asyncio
class TestRequestShape:
    async def test_headers_and_body(self, client, fake):
        fake.on("/investments/holdings/get", spec_holdings())
        await client.investments_holdings_get(ACCESS_TOKEN, account_ids=["a1"])
        path, body, headers = fake.calls[0]
        assert path == "/investments/holdings/get"
        assert headers["Plaid-Version"] == PLAID_VERSION == "2020-09-14"
        assert headers["PLAID-CLIENT-ID"] == CLIENT_ID
        assert headers["PLAID-SECRET"] == SECRET
        assert body == {"access_token": ACCESS_TOKEN, "options": {"account_ids": ["a1"]}}

    async def test_no_options_key_without_account_ids(self, client, fake):
        fake.on("/accounts/get", {"accounts": [], "item": {}, "request_id": "r"})
        await client.accounts_get(ACCESS_TOKEN)
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}

    async def test_environment_hosts(self):
        async with PlaidClient("c", "s", environment="production") as prod:
            assert prod.base_url == "https://production.plaid.com"
        async with PlaidClient("c", "s", base_url="http://127.0.0.1:9/") as local:
            assert local.base_url == "http://127.0.0.1:9"
        with pytest.raises(ValueError, match="environment"):
            PlaidClient("c", "s", environment="development")  # type: ignore[arg-type]

    async def test_secret_not_in_repr(self, client):
        assert SECRET not in repr(client)

    async def test_link_token_create_new_item_with_hosted_link(self, client, fake):
        fake.on(
            "/link/token/create",
            {
                "link_token": "link-sandbox-af1a0311",
                "expiration": "2020-03-27T12:56:34Z",
                "request_id": "XQVgFigpGHXkb0b",
                "hosted_link_url": "https://hosted.plaid.com/link/abc",
            },
        )
        out = await client.link_token_create(
            client_user_id="u1",
            webhook="https://example.com/hook",
            redirect_uri="https://example.com/oauth",
            hosted_link={"completion_redirect_uri": "https://example.com/done"},
        )
        assert out["hosted_link_url"] == "https://hosted.plaid.com/link/abc"
        body = fake.calls[0][1]
        assert body["user"] == {"client_user_id": "u1"}
        assert body["products"] == ["investments"]
        assert body["country_codes"] == ["US"]
        assert body["hosted_link"] == {"completion_redirect_uri": "https://example.com/done"}
        assert "access_token" not in body

    async def test_link_token_create_update_mode_omits_products(self, client, fake):
        fake.on("/link/token/create", {"link_token": "link-sandbox-x", "request_id": "r"})
        await client.link_token_create(client_user_id="u1", access_token=ACCESS_TOKEN)
        body = fake.calls[0][1]
        assert body["access_token"] == ACCESS_TOKEN
        assert "products" not in body

    async def test_exchange_and_sandbox_create(self, client, fake):
        fake.on("/sandbox/public_token/create", {"public_token": PUBLIC_TOKEN, "request_id": "a"})
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "M5eVJqLnv3", "request_id": "Aim3b"},
        )
        created = await client.sandbox_public_token_create("ins_109508")
        exchanged = await client.item_public_token_exchange(created["public_token"])
        assert exchanged["item_id"] == "M5eVJqLnv3"
        assert fake.calls[0][1] == {
            "institution_id": "ins_109508",
            "initial_products": ["investments"],
        }

    async def test_institutions(self, client, fake):
        fake.on(
            "/institutions/search",
            {
                "institutions": [{"institution_id": "ins_109508", "name": "First Platypus Bank"}],
                "request_id": "q",
            },
        )
        fake.on(
            "/institutions/get_by_id",
            {
                "institution": {"institution_id": "ins_109508", "name": "First Platypus Bank"},
                "request_id": "q",
            },
        )
        found = await client.institutions_search("platypus")
        one = await client.institutions_get_by_id("ins_109508", include_status=True)
        assert found["institutions"][0]["institution_id"] == "ins_109508"
        assert one["institution"]["name"] == "First Platypus Bank"
        assert fake.calls[1][1]["options"] == {"include_status": True}


@pytest.mark.asyncio
class TestRetries:
    async def test_product_not_ready_retried_then_ok(self, client, fake, sleeps):
        fake.on(
            "/investments/holdings/get",
            [plaid_error("PRODUCT_NOT_READY"), plaid_error("PRODUCT_NOT_READY"), spec_holdings()],
        )
        out = await client.investments_holdings_get(ACCESS_TOKEN)
        assert len(out["holdings"]) == 9
        assert len(fake.calls) == 3
        assert sleeps == [0.5, 1.0]

    async def test_product_not_ready_bounded(self, client, fake, sleeps):
        fake.on("/investments/holdings/get", [plaid_error("PRODUCT_NOT_READY")])
        with pytest.raises(ProductNotReady) as info:
            await client.investments_holdings_get(ACCESS_TOKEN)
        assert info.value.retryable
        assert len(fake.calls) == 4  # 1 + max_retries

    async def test_invalid_access_token_not_retried(self, client, fake, sleeps):
        fake.on("/investments/holdings/get", plaid_error("INVALID_ACCESS_TOKEN", "INVALID_INPUT"))
        with pytest.raises(InvalidAccessToken):
            await client.investments_holdings_get(ACCESS_TOKEN)
        assert len(fake.calls) == 1
        assert sleeps == []

    async def test_login_required_not_retried(self, client, fake):
        fake.on("/accounts/get", plaid_error("ITEM_LOGIN_REQUIRED"))
        with pytest.raises(LoginRequired):
            await client.accounts_get(ACCESS_TOKEN)
        assert len(fake.calls) == 1

    async def test_rate_limit_retried_with_retry_after(self, client, fake, sleeps):
        limited = httpx.Response(
            429,
            headers={"Retry-After": "2"},
            json={
                "error_type": "RATE_LIMIT_EXCEEDED",
                "error_code": "ACCOUNTS_LIMIT",
                "error_message": "rate limit exceeded",
                "display_message": None,
                "request_id": "r",
            },
        )
        fake.on("/accounts/get", [limited, {"accounts": [], "item": {}, "request_id": "r"}])
        await client.accounts_get(ACCESS_TOKEN)
        assert sleeps == [2.0]

    async def test_rate_limit_exhausted(self, client, fake):
        fake.on("/accounts/get", [plaid_error("ACCOUNTS_LIMIT", "RATE_LIMIT_EXCEEDED", 429)])
        with pytest.raises(PlaidRateLimited):
            await client.accounts_get(ACCESS_TOKEN)
        assert len(fake.calls) == 4

    async def test_network_error_retried_for_reads(self, client, fake):
        fake.on(
            "/item/get",
            [httpx.ConnectError("refused"), {"item": {"item_id": "i"}, "request_id": "r"}],
        )
        out = await client.item_get(ACCESS_TOKEN)
        assert out["item"]["item_id"] == "i"

    async def test_billed_refresh_not_retried_after_read_timeout(self, client, fake):
        fake.on("/investments/refresh", [httpx.ReadTimeout("slow"), {"request_id": "r"}])
        with pytest.raises(PlaidUnavailable):
            await client.investments_refresh(ACCESS_TOKEN)
        assert len(fake.calls) == 1

    async def test_non_json_success_is_malformed(self, client, fake):
        fake.on("/item/get", httpx.Response(200, text="<html>"))
        with pytest.raises(PlaidMalformedResponse):
            await client.item_get(ACCESS_TOKEN)

    async def test_missing_list_is_malformed_naming_field(self, client, fake):
        fake.on("/investments/holdings/get", {"accounts": [], "securities": [], "request_id": "r"})
        with pytest.raises(PlaidMalformedResponse) as info:
            await client.investments_holdings_get(ACCESS_TOKEN)
        assert info.value.field == "holdings"


@pytest.mark.asyncio
class TestTransactionsPaging:
    async def test_pages_until_total(self, client, fake):
        example = spec_transactions()
        rows = example["investment_transactions"] * 2  # 6 rows
        for i, row in enumerate(rows):
            rows[i] = {**row, "investment_transaction_id": f"t{i}"}

        def page(body):
            offset, count = body["options"]["offset"], body["options"]["count"]
            return httpx.Response(
                200,
                json={
                    **example,
                    "investment_transactions": rows[offset : offset + count],
                    "total_investment_transactions": len(rows),
                },
            )

        fake.on("/investments/transactions/get", page)
        out = await client.investments_transactions_get(
            ACCESS_TOKEN, "2020-01-01", "2020-12-31", page_size=4
        )
        assert [t["investment_transaction_id"] for t in out["investment_transactions"]] == [
            f"t{i}" for i in range(6)
        ]
        assert [c[1]["options"]["offset"] for c in fake.calls] == [0, 4]
        assert out["total_investment_transactions"] == 6
        ids = [s["security_id"] for s in out["securities"]]
        assert len(ids) == len(set(ids))

    async def test_stops_on_empty_page(self, client, fake):
        fake.on(
            "/investments/transactions/get",
            {
                **spec_transactions(),
                "investment_transactions": [],
                "total_investment_transactions": 9,
            },
        )
        out = await client.investments_transactions_get(ACCESS_TOKEN, "2020-01-01", "2020-12-31")
        assert out["investment_transactions"] == []
        assert len(fake.calls) == 1


class TestLogging:
    def test_event_names(self):
        assert event_name("/investments/holdings/get") == "plaid.investments_holdings.get"
        assert event_name("/link/token/create") == "plaid.link_token.create"
        assert event_name("/investments/refresh") == "plaid.investments.refresh"

    @pytest.mark.asyncio
    async def test_one_event_per_attempt_and_no_token(self, fake, capsys):
        configure_logging("DEBUG", json=True)
        try:
            fake.on(
                "/investments/holdings/get",
                [
                    plaid_error("PRODUCT_NOT_READY", message=f"not ready for {ACCESS_TOKEN}"),
                    spec_holdings(),
                ],
            )
            fake.on(
                "/item/public_token/exchange",
                {"access_token": ACCESS_TOKEN, "item_id": "i", "request_id": "rq"},
            )

            async def no_sleep(_: float) -> None:
                return None

            async with PlaidClient(
                CLIENT_ID,
                SECRET,
                transport=httpx.MockTransport(fake),
                retry=RetryPolicy(jitter=0.0),
                sleep=no_sleep,
            ) as plaid:
                await plaid.investments_holdings_get(ACCESS_TOKEN)
                await plaid.item_public_token_exchange(PUBLIC_TOKEN)
            err = capsys.readouterr().err
        finally:
            structlog.reset_defaults()
        records = [json.loads(line) for line in err.strip().splitlines()]
        holdings = [r for r in records if r["event"] == "plaid.investments_holdings.get"]
        assert [r["attempt"] for r in holdings] == [1, 2]
        assert holdings[0]["error_code"] == "PRODUCT_NOT_READY"
        assert holdings[1]["status"] == 200
        assert holdings[1]["request_id"] == "l68wb8zpS0hqmsJ"
        assert all("latency_ms" in r for r in holdings)
        assert any(r["event"] == "plaid.item_public_token.exchange" for r in records)
        for secret in (ACCESS_TOKEN, PUBLIC_TOKEN, SECRET):
            assert secret not in err
