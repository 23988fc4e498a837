"""Signed webhooks: the `Plaid-Verification` JWT (ES256) and its verification keys.

Plaid signs `{"iat": <unix seconds>, "request_body_sha256": <hex sha256 of the raw body>}`
with a P-256 key whose public JWK `/webhook_verification_key/get` serves by `kid`. Bodies are
serialised with an indent of 2, as Plaid's are, and receivers must hash the raw bytes. A rotated
key is still served, with `expired_at` set, as Plaid keeps serving its old keys.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

__all__ = ["VERIFICATION_HEADER", "WebhookSigner", "encode_body"]

VERIFICATION_HEADER = "Plaid-Verification"


@dataclass
class _Key:
    kid: str
    private: ec.EllipticCurvePrivateKey
    created_at: int
    expired_at: int | None = None


class WebhookSigner:
    """The sandbox's P-256 signing keys: the current one signs, every one is served by `kid`."""

    def __init__(self, created_at: float) -> None:
        self._keys: dict[str, _Key] = {}
        self._current = self._new_key(created_at)

    def _new_key(self, created_at: float) -> _Key:
        key = _Key(str(uuid.uuid4()), ec.generate_private_key(ec.SECP256R1()), int(created_at))
        self._keys[key.kid] = key
        return key

    @property
    def kid(self) -> str:
        return self._current.kid

    def jwk(self, kid: str) -> dict[str, Any] | None:
        """What /webhook_verification_key/get returns for `kid`, or None for a key this
        sandbox never had."""
        key = self._keys.get(kid)
        if key is None:
            return None
        public = ECAlgorithm.to_jwk(key.private.public_key(), as_dict=True)
        return {
            "alg": "ES256",
            "crv": public["crv"],
            "kid": key.kid,
            "kty": public["kty"],
            "use": "sig",
            "x": public["x"],
            "y": public["y"],
            "created_at": key.created_at,
            "expired_at": key.expired_at,
        }

    def rotate(self, now: float) -> str:
        """Expire the current key at `now` and sign with a new one from then on; its `kid`."""
        self._current.expired_at = int(now)
        self._current = self._new_key(now)
        return self._current.kid

    def sign(self, body: bytes, now: float) -> str:
        claims = {"iat": int(now), "request_body_sha256": hashlib.sha256(body).hexdigest()}
        return jwt.encode(
            claims, self._current.private, algorithm="ES256", headers={"kid": self._current.kid}
        )


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode()
