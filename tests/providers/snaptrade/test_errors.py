"""(status, SnapTrade code) to typed errors, each also a neutral domain error."""

from __future__ import annotations

import httpx
import pytest

from brokerlink.domain import errors as domain
from brokerlink.providers.snaptrade import errors as st
from brokerlink.providers.snaptrade.errors import error_from_exception, error_from_response


class TestErrorFromResponse:
    @pytest.mark.parametrize(
        ("status", "code", "cls", "domain_cls"),
        [
            (401, "1076", st.SnapTradeAuthError, domain.AuthFailed),
            (401, "1077", st.SnapTradeAuthError, domain.AuthFailed),
            (401, "1078", st.SnapTradeAuthError, domain.AuthFailed),
            (401, "1083", st.UserSecretInvalid, domain.AuthFailed),
            (403, "1066", st.SnapTradeAuthError, domain.AuthFailed),
            (403, "1141", st.SnapTradeAuthError, domain.AuthFailed),
            (429, "0000", st.SnapTradeRateLimited, domain.RateLimited),
            (429, "throttled", st.SnapTradeRateLimited, domain.RateLimited),
            (404, "1011", st.SnapTradeNotFound, domain.NotFound),
            (410, "1011", st.SnapTradeNotFound, domain.NotFound),
            (400, "1012", st.SnapTradeBadRequest, domain.ProviderRejected),
            (400, "1076", st.SnapTradeBadRequest, domain.ProviderRejected),
            (402, "3003", st.SnapTradeConnectionDisabled, domain.ReconnectRequired),
            (402, None, st.SnapTradeBadRequest, domain.ProviderRejected),
            (422, None, st.SnapTradeBadRequest, domain.ProviderRejected),
            (425, "3012", st.SnapTradeServerError, domain.ProviderUnavailable),
            (500, "1000", st.SnapTradeServerError, domain.ProviderUnavailable),
            (501, None, st.SnapTradeServerError, domain.ProviderUnavailable),
            (503, "3002", st.SnapTradeServerError, domain.ProviderUnavailable),
        ],
    )
    def test_mapping(self, status, code, cls, domain_cls):
        body = {"detail": "something", "status_code": status}
        if code is not None:
            body["code"] = code
        err = error_from_response("Op_name", status, body, request_id="req-1")
        assert type(err) is cls
        assert isinstance(err, domain_cls)
        assert isinstance(err, st.SnapTradeError)
        assert err.status == status
        assert err.code == code
        assert err.request_id == "req-1"
        assert "Op_name" in str(err)
        if code is not None:
            assert f"code={code}" in str(err)

    def test_technical_vs_logical(self):
        assert error_from_response("op", 503, None).retryable is True
        assert error_from_response("op", 429, None).retryable is True
        assert error_from_response("op", 401, None).retryable is False
        assert error_from_response("op", 400, None).retryable is False

    def test_integer_code_and_default_fields(self):
        err = error_from_response(
            "op", 401, {"default_code": 1076, "default_detail": "Unable to verify signature sent"}
        )
        assert err.code == "1076"
        assert "Unable to verify signature" in err.message

    def test_non_json_body(self):
        err = error_from_response("op", 502, None)
        assert err.message == "HTTP 502"
        assert isinstance(err, st.SnapTradeServerError)

    def test_retry_after_carried(self):
        err = error_from_response("op", 429, {"code": "0000"}, retry_after=4.0)
        assert isinstance(err, st.SnapTradeRateLimited)
        assert err.retry_after == 4.0

    def test_secret_echoed_by_server_is_scrubbed(self):
        body = {"detail": "bad request userSecret=hunter2-secret consumerKey=ck", "code": "1012"}
        err = error_from_response("op", 400, body)
        assert "hunter2-secret" not in str(err)
        assert "consumerKey=ck" not in str(err)


class TestErrorFromException:
    def test_timeout(self):
        err = error_from_exception("op", httpx.ReadTimeout("slow"))
        assert isinstance(err, st.SnapTradeConnectionError)
        assert isinstance(err, domain.ProviderUnavailable)
        assert "timed out" in err.message

    def test_connect(self):
        err = error_from_exception("op", httpx.ConnectError("refused"))
        assert isinstance(err, st.SnapTradeConnectionError)
        assert err.retryable
