"""The SnapTrade sandbox's webhook signing: payloads shaped as SnapTrade sends them, signed as
the webhook documentation (research notes §1.5) describes, checked here by its own computation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from datetime import datetime

from brokerlink.sandbox.snaptrade.webhooks import sign_webhook, webhook_payload

KEY = "sandbox-consumer-key"
NOW = 1_795_500_000.5


def section_1_5(key: str, body: bytes) -> str:
    """Parse the body, dump it with sorted keys and no whitespace, HMAC-SHA256, base64."""
    canonical = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True)
    digest = hmac.new(key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_the_payload_carries_the_common_fields():
    payload = webhook_payload(
        "CONNECTION_BROKEN",
        client_id="CLIENT",
        user_id="user-1",
        now=NOW,
        brokerageAuthorizationId="auth-1",
        accountId=None,
    )
    assert uuid.UUID(payload["webhookId"]).version == 4
    assert payload["eventTimestamp"] == "2026-11-24T06:00:00.500000+00:00"
    assert datetime.fromisoformat(payload["eventTimestamp"]).timestamp() == NOW
    assert payload["clientId"] == "CLIENT"
    assert payload["userId"] == "user-1"
    assert payload["eventType"] == "CONNECTION_BROKEN"
    assert payload["brokerageAuthorizationId"] == "auth-1"
    assert "accountId" not in payload
    assert "webookId" not in payload


def test_trade_payloads_carry_the_specs_misspelt_id_too():
    payload = webhook_payload("TRADE_DETECTION", client_id="C", user_id="u", now=NOW)
    assert payload["webookId"] == payload["webhookId"]


def test_each_webhook_has_its_own_id():
    ids = {webhook_payload("USER_DELETED", client_id="C", user_id="u", now=NOW)["webhookId"]}
    ids.add(webhook_payload("USER_DELETED", client_id="C", user_id="u", now=NOW)["webhookId"])
    assert len(ids) == 2


def test_the_signature_is_section_1_5s():
    payload = webhook_payload(
        "ACCOUNT_HOLDINGS_UPDATED",
        client_id="C",
        user_id="u",
        now=NOW,
        accountId="acc",
        brokerageName="Caixa Econômica",
        details={"positions": {"success": True, "error": None}},
    )
    signed = sign_webhook(KEY, payload)
    assert json.loads(signed.body) == payload
    assert signed.headers["Content-Type"] == "application/json"
    assert signed.headers["Signature"] == section_1_5(KEY, signed.body)
    assert signed.headers["Signature"] != section_1_5("another-key", signed.body)


def test_the_wire_body_is_not_the_signed_text():
    # A receiver hashing the raw bytes would fail: the body keeps spaces, insertion order and
    # UTF-8, the signed text is compact, sorted and ASCII-escaped.
    payload = webhook_payload("USER_DELETED", client_id="C", user_id="Zoë", now=NOW)
    signed = sign_webhook(KEY, payload)
    canonical = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    assert signed.body != canonical
    assert "Zoë".encode() in signed.body
    raw = base64.b64encode(hmac.new(KEY.encode(), signed.body, hashlib.sha256).digest())
    assert signed.headers["Signature"] != raw.decode()


def test_the_sandboxes_webhook_signing_imports_no_provider_code():
    code = (
        "import sys, brokerlink.sandbox.snaptrade.webhooks, brokerlink.sandbox.plaid.webhooks;"
        "bad = [m for m in sys.modules if m.startswith('brokerlink.providers')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
