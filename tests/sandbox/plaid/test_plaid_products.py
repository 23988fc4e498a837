"""Plaid's three product lists at Link: `products` (required: unsupported → PRODUCTS_NOT_SUPPORTED,
and the institution is not offered), `required_if_supported_products` and `optional_products`
(added to the Item only where the institution and its accounts support them)."""

from __future__ import annotations

import pytest

from brokerlink.sandbox.plaid.seed import AccountTemplate, InstitutionSeed

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("check_webhooks")]

LINK = {
    "client_name": "brokerlink",
    "language": "en",
    "country_codes": ["US"],
    "user": {"client_user_id": "user-1"},
    "hosted_link": {},
}
BANK = {"products": ["transactions"], "required_if_supported_products": ["investments"]}
GOOD = {"username": "user_good", "password": "pass_good"}


async def _link(api, http, institution_id, **lists):
    """Hosted Link for `institution_id` asking for `lists`; the page's answer and the Item."""
    body = await api.ok("/link/token/create", {**LINK, "institution_id": institution_id, **lists})
    answer = await http.post(
        body["hosted_link_url"], data={"institution_id": institution_id, **GOOD}
    )
    if answer.status_code != 200:
        return answer, None
    got = await api.ok("/link/token/get", {"link_token": body["link_token"]})
    [result] = got["link_sessions"][0]["results"]["item_add_results"]
    exchanged = await api.ok(
        "/item/public_token/exchange", {"public_token": result["public_token"]}
    )
    item = await api.ok("/item/get", {"access_token": exchanged["access_token"]})
    return answer, {"access_token": exchanged["access_token"], **item}


class TestRequiredProducts:
    async def test_a_bank_asked_for_investments_is_refused(self, api, http):
        answer, item = await _link(api, http, "ins_127989", products=["investments"])
        assert answer.status_code == 400
        assert 'data-error-code="PRODUCTS_NOT_SUPPORTED"' in answer.text.replace("'", '"')
        assert "Bank of America does not support the requested products: investments" in (
            answer.text
        )
        assert item is None

    async def test_an_institution_without_a_required_product_is_not_offered(self, api, http):
        body = await api.ok("/link/token/create", {**LINK, **BANK})
        page = (await http.get(body["hosted_link_url"])).text
        assert "ins_127989" in page  # Bank of America: transactions, no investments
        assert "ins_56" in page  # Chase
        assert "ins_115616" not in page  # Vanguard has no transactions


class TestRequiredIfSupported:
    async def test_added_where_the_institution_supports_it(self, api, http):
        answer, item = await _link(api, http, "ins_56", **BANK)
        assert answer.status_code == 200
        assert item["item"]["products"] == ["investments", "transactions"]
        assert item["item"]["billed_products"] == ["investments", "transactions"]
        assert set(item["status"]) >= {"investments", "transactions"}
        holdings = await api.ok("/investments/holdings/get", {"access_token": item["access_token"]})
        assert [a["subtype"] for a in holdings["accounts"]] == ["brokerage"]

    async def test_left_out_where_it_does_not(self, api, http):
        answer, item = await _link(api, http, "ins_127989", **BANK)
        assert answer.status_code == 200
        assert item["item"]["products"] == ["transactions"]
        assert item["item"]["billed_products"] == ["transactions"]
        assert "investments" not in item["status"]
        accounts = await api.ok("/accounts/get", {"access_token": item["access_token"]})
        assert {a["type"] for a in accounts["accounts"]} == {"depository", "credit"}

    async def test_left_out_where_no_account_is_of_its_kind(self, api, http, state):
        # Offers investments and liabilities, but this login holds a checking account only.
        state.institutions["ins_checking_only"] = InstitutionSeed(
            "ins_checking_only",
            "Checking Only Credit Union",
            ("auth", "balance", "investments", "liabilities", "transactions"),
            accounts=(
                AccountTemplate(
                    "checking", "Checking", None, "0001", "depository", "checking", 50.0, 50.0
                ),
            ),
        )
        lists = {
            "products": ["transactions"],
            "required_if_supported_products": ["investments", "liabilities"],
            "optional_products": ["auth"],
        }
        answer, item = await _link(api, http, "ins_checking_only", **lists)
        assert answer.status_code == 200
        assert item["item"]["products"] == ["auth", "transactions"]


class TestOptionalProducts:
    async def test_added_where_supported_never_failing_the_link(self, api, http):
        lists = {"products": ["transactions"], "optional_products": ["investments"]}
        _, chase = await _link(api, http, "ins_56", **lists)
        assert chase["item"]["products"] == ["investments", "transactions"]
        answer, citi = await _link(api, http, "ins_5", **lists)
        assert answer.status_code == 200
        assert citi["item"]["products"] == ["transactions"]


class TestLists:
    @pytest.mark.parametrize(
        "lists",
        [
            {"required_if_supported_products": ["investments"]},
            {"products": [], "optional_products": ["investments"]},
            {"products": ["transactions"], "required_if_supported_products": ["transactions"]},
            {"products": ["investments"], "optional_products": ["investments"]},
            {"products": ["transactions"], "optional_products": ["balance"]},
            {"products": ["transactions"], "required_if_supported_products": ["stocks"]},
        ],
    )
    async def test_refused(self, api, lists):
        err = await api.error("/link/token/create", {**LINK, **lists})
        assert (err["error_type"], err["error_code"]) == ("INVALID_REQUEST", "INVALID_FIELD")

    async def test_metadata_lists_the_required_products(self, api):
        body = await api.ok("/link/token/create", {**LINK, **BANK})
        got = await api.ok("/link/token/get", {"link_token": body["link_token"]})
        assert got["metadata"]["initial_products"] == ["transactions"]
