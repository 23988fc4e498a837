"""The official plaid-python SDK, pointed at the sandbox served by uvicorn over loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import plaid
import pytest
import uvicorn
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest
from plaid.model.investments_refresh_request import InvestmentsRefreshRequest
from plaid.model.investments_transactions_get_request import InvestmentsTransactionsGetRequest
from plaid.model.investments_transactions_get_request_options import (
    InvestmentsTransactionsGetRequestOptions,
)
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_hosted_link import LinkTokenCreateHostedLink
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.link_token_get_request import LinkTokenGetRequest
from plaid.model.products import Products
from plaid.model.sandbox_item_reset_login_request import SandboxItemResetLoginRequest
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest

from brokerlink.sandbox.plaid import create_app
from tests.sandbox.plaid.conftest import CLIENT_ID, SECRET


class Recorder:
    """ASGI wrapper keeping every response, so the test can validate them against the spec."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, str, bytes]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status, ctype, chunks = 0, "", []

        async def recording_send(message):
            nonlocal status, ctype
            if message["type"] == "http.response.start":
                status = message["status"]
                ctype = dict(message.get("headers", [])).get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording_send)
        self.seen.append((scope["method"], scope["path"], status, ctype, b"".join(chunks)))


@pytest.fixture
def served(validator) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(
        create_app(
            client_id=CLIENT_ID, secret=SECRET, product_ready_delay=0, deliver_webhooks=False
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(recorder, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", recorder
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    for method, path, status, ctype, raw in recorder.seen:
        if "json" in ctype:
            validator.validate(method, path, status, json.loads(raw))


def _client(host: str, secret: str = SECRET) -> plaid_api.PlaidApi:
    cfg = plaid.Configuration(host=host, api_key={"clientId": CLIENT_ID, "secret": secret})
    return plaid_api.PlaidApi(plaid.ApiClient(cfg))


def test_sdk_links_reads_holdings_and_balances(served):
    host, recorder = served
    client = _client(host)
    public = client.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id="ins_109508", initial_products=[Products("investments")]
        )
    )
    exchanged = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=public.public_token)
    )
    token = exchanged.access_token

    holdings = client.investments_holdings_get(InvestmentsHoldingsGetRequest(access_token=token))
    securities = {s.security_id: s for s in holdings.securities}
    assert {str(a.subtype) for a in holdings.accounts} == {"ira", "401k"}
    assert any(s.ticker_symbol == "CUR:USD" for s in securities.values())
    assert any(s.option_contract is not None for s in securities.values())
    assert any(s.fixed_income is not None for s in securities.values())
    assert all(h.security_id in securities for h in holdings.holdings)

    balances = client.accounts_balance_get(AccountsBalanceGetRequest(access_token=token))
    checking = next(a for a in balances.accounts if str(a.subtype) == "checking")
    assert checking.balances.current == 110.0
    assert checking.balances.available == 100.0

    accounts = client.accounts_get(AccountsGetRequest(access_token=token))
    assert len(accounts.accounts) == 6
    item = client.item_get(ItemGetRequest(access_token=token))
    assert item.item.institution_id == "ins_109508"

    client.investments_refresh(InvestmentsRefreshRequest(access_token=token))
    txns = client.investments_transactions_get(
        InvestmentsTransactionsGetRequest(
            access_token=token,
            start_date=date(2024, 1, 1),
            end_date=date(2030, 1, 1),
            options=InvestmentsTransactionsGetRequestOptions(count=5, offset=5),
        )
    )
    assert len(txns.investment_transactions) == 5
    assert txns.total_investment_transactions > 10

    inst = client.institutions_get_by_id(
        InstitutionsGetByIdRequest(institution_id="ins_116912", country_codes=[CountryCode("US")])
    )
    assert inst.institution.name == "Empower Retirement"

    client.sandbox_item_reset_login(SandboxItemResetLoginRequest(access_token=token))
    with pytest.raises(plaid.ApiException) as caught:
        client.accounts_get(AccountsGetRequest(access_token=token))
    assert json.loads(caught.value.body)["error_code"] == "ITEM_LOGIN_REQUIRED"

    client.item_remove(ItemRemoveRequest(access_token=token))
    assert len(recorder.seen) >= 12


def test_sdk_hosted_link_token(served):
    host, _ = served
    client = _client(host)
    created = client.link_token_create(
        LinkTokenCreateRequest(
            client_name="brokerlink",
            language="en",
            country_codes=[CountryCode("US")],
            user=LinkTokenCreateRequestUser(client_user_id="user-1"),
            products=[Products("investments")],
            hosted_link=LinkTokenCreateHostedLink(),
        )
    )
    assert created.hosted_link_url == f"{host}/hosted-link/{created.link_token}"
    got = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    assert got.link_sessions == []

    # The user completes Hosted Link in a browser; the SDK then reads the public token.
    assert httpx.get(created.hosted_link_url).status_code == 200
    form = {"institution_id": "ins_11", "username": "user_good", "password": "pass_good"}
    assert httpx.post(created.hosted_link_url, data=form).status_code == 200
    got = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    [session] = got.link_sessions
    [result] = session.results.item_add_results
    assert result.institution.institution_id == "ins_11"
    exchanged = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=result.public_token)
    )
    client.sandbox_item_reset_login(
        SandboxItemResetLoginRequest(access_token=exchanged.access_token)
    )
    item = client.item_get(ItemGetRequest(access_token=exchanged.access_token))
    assert item.item.error.error_code == "ITEM_LOGIN_REQUIRED"


def _bank_link(client: plaid_api.PlaidApi, institution_id: str) -> Any:
    """A bank's Hosted Link as brokerlink asks for it, completed; the Item from /item/get."""
    created = client.link_token_create(
        LinkTokenCreateRequest(
            client_name="brokerlink",
            language="en",
            country_codes=[CountryCode("US")],
            user=LinkTokenCreateRequestUser(client_user_id="user-1"),
            products=[Products("transactions")],
            required_if_supported_products=[Products("investments")],
            institution_id=institution_id,
            hosted_link=LinkTokenCreateHostedLink(),
        )
    )
    form = {"institution_id": institution_id, "username": "user_good", "password": "pass_good"}
    assert httpx.post(created.hosted_link_url, data=form).status_code == 200
    got = client.link_token_get(LinkTokenGetRequest(link_token=created.link_token))
    [result] = got.link_sessions[0].results.item_add_results
    exchanged = client.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=result.public_token)
    )
    return client.item_get(ItemGetRequest(access_token=exchanged.access_token)).item


def test_sdk_bank_link_adds_investments_only_where_supported(served):
    client = _client(served[0])
    boa = _bank_link(client, "ins_127989")
    assert [str(p) for p in boa.products] == ["transactions"]
    assert [str(p) for p in boa.billed_products] == ["transactions"]
    chase = _bank_link(client, "ins_56")
    assert sorted(str(p) for p in chase.products) == ["investments", "transactions"]


def test_sdk_typed_error_for_bad_access_token(served):
    host, _ = served
    with pytest.raises(plaid.ApiException) as caught:
        _client(host).accounts_get(AccountsGetRequest(access_token="access-sandbox-nope"))
    assert caught.value.status == 400
    body = json.loads(caught.value.body)
    assert (body["error_type"], body["error_code"]) == ("INVALID_INPUT", "INVALID_ACCESS_TOKEN")
    assert body["request_id"]


def test_sdk_invalid_api_keys(served):
    host, _ = served
    with pytest.raises(plaid.ApiException) as caught:
        _client(host, secret="wrong").item_get(ItemGetRequest(access_token="access-sandbox-x"))
    assert json.loads(caught.value.body)["error_code"] == "INVALID_API_KEYS"
