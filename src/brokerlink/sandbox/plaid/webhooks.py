"""Signed webhook delivery: the `Plaid-Verification` JWT (ES256) and its verification key.

Plaid signs `{"iat": <unix seconds>, "request_body_sha256": <hex sha256 of the raw body>}`
with a P-256 key whose public JWK `/webhook_verification_key/get` serves by `kid`. Bodies are
serialised with an indent of 2, as Plaid's are, and receivers must hash the raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["WebhookSigner", "deliver"]

VERIFICATION_HEADER = "Plaid-Verification"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class WebhookSigner:
    """One P-256 key per sandbox; `jwk()` is what /webhook_verification_key/get returns."""

    def __init__(self, created_at: float) -> None:
        self.kid = str(uuid.uuid4())
        self.created_at = int(created_at)
        self._key = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {
            "alg": "ES256",
            "crv": "P-256",
            "kid": self.kid,
            "kty": "EC",
            "use": "sig",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
            "created_at": self.created_at,
            "expired_at": None,
        }

    def sign(self, body: bytes, now: float) -> str:
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        claims = {"iat": int(now), "request_body_sha256": hashlib.sha256(body).hexdigest()}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants the raw r||s pair, not the DER encoding cryptography returns.
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode()


async def deliver(
    webhooks: list[tuple[str, dict[str, Any]]],
    signer: WebhookSigner,
    now: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Best-effort POST of queued webhooks; a dead receiver is the receiver's problem."""
    async with httpx.AsyncClient(timeout=2.0, transport=transport) as client:
        for url, body in webhooks:
            raw = encode_body(body)
            headers = {
                "Content-Type": "application/json",
                VERIFICATION_HEADER: signer.sign(raw, now),
            }
            try:
                await client.post(url, content=raw, headers=headers)
            except httpx.HTTPError:
                continue
