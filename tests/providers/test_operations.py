"""The operation table: every operation the clients send is classified, and has a scenario."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from brokerlink.providers.operations import (
    PLAID_OPERATIONS,
    SNAPTRADE_OPERATIONS,
    Kind,
    UnknownOperation,
    plaid_operation,
    snaptrade_operation,
)
from brokerlink.providers.plaid import client as plaid_client
from brokerlink.providers.snaptrade import client as snaptrade_client
from tests.providers.retry_scenarios import PLAID, SNAPTRADE


def _snaptrade_operations_sent() -> set[str]:
    """Every `operation="…"` the SnapTrade client passes to its request loop."""
    tree = ast.parse(inspect.getsource(snaptrade_client))
    return {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "operation"
        and isinstance(kw.value, ast.Constant)
        and isinstance(kw.value.value, str)
    }


def _plaid_paths_sent() -> set[str]:
    """Every literal path the Plaid client posts (`self.request("/…")` or `path = "/…"`)."""
    tree = ast.parse(inspect.getsource(plaid_client))
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "request"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "path" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            found.add(node.value.value)
    return found


def test_every_snaptrade_operation_the_client_sends_is_classified():
    sent = _snaptrade_operations_sent()
    assert len(sent) >= 20  # the scan sees the client's calls
    assert sent - set(SNAPTRADE_OPERATIONS) == set()


def test_every_plaid_path_the_client_sends_is_classified():
    sent = _plaid_paths_sent()
    assert len(sent) >= 12
    assert sent - set(PLAID_OPERATIONS) == set()


def test_every_classified_operation_has_a_sandbox_scenario():
    assert set(SNAPTRADE) == set(SNAPTRADE_OPERATIONS)
    assert set(PLAID) == set(PLAID_OPERATIONS)


@pytest.mark.parametrize(
    ("lookup", "name", "kind"),
    [
        (snaptrade_operation, "Trading_placeForceOrder", Kind.SINGLE_USE),
        (snaptrade_operation, "Trading_placeOrder", Kind.SINGLE_USE),
        (snaptrade_operation, "Connections_refreshBrokerageAuthorization", Kind.BILLED),
        (snaptrade_operation, "Authentication_resetSnapTradeUserSecret", Kind.SINGLE_USE),
        (snaptrade_operation, "Authentication_registerSnapTradeUser", Kind.SINGLE_USE),
        (snaptrade_operation, "Connections_deleteConnection", Kind.SINGLE_USE),
        (snaptrade_operation, "Authentication_deleteSnapTradeUser", Kind.SINGLE_USE),
        (snaptrade_operation, "AccountInformation_getAllAccountPositions", Kind.IDEMPOTENT),
        (plaid_operation, "/investments/refresh", Kind.BILLED),
        (plaid_operation, "/accounts/balance/get", Kind.BILLED),
        (plaid_operation, "/item/public_token/exchange", Kind.SINGLE_USE),
        (plaid_operation, "/item/remove", Kind.SINGLE_USE),
        (plaid_operation, "/investments/holdings/get", Kind.IDEMPOTENT),
        (plaid_operation, "/accounts/get", Kind.IDEMPOTENT),
    ],
)
def test_the_operations_named_in_the_rule(lookup, name, kind):
    assert lookup(name).kind is kind


def test_an_unknown_operation_fails_loudly():
    with pytest.raises(UnknownOperation, match="not classified"):
        snaptrade_operation("Trading_placeMlegOrder")
    with pytest.raises(UnknownOperation, match="not classified"):
        plaid_operation("/transfer/create")


def test_the_readme_retry_table_is_the_operation_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Retries", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (SnapTrade|Plaid) `([^`]+)`[^|]*\| ([a-z-]+) \|", section, re.M)
    listed = {(provider, name): kind for provider, name, kind in rows}
    expected = {("SnapTrade", n): op.kind.value for n, op in SNAPTRADE_OPERATIONS.items()}
    expected |= {("Plaid", n): op.kind.value for n, op in PLAID_OPERATIONS.items()}
    assert listed == expected
