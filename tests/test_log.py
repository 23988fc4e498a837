import json

import structlog

from brokerlink.log import REDACTED, configure_logging, get_logger, redact, redact_text


def test_redact_text_masks_query_json_and_bearer():
    text = (
        "GET /accounts?userId=u1&userSecret=a%2Bb/c&clientId=C&timestamp=1 "
        '{"consumer_key": "ck-123", "name": "ok"} Authorization: Bearer abc.def'
    )
    out = redact_text(text)
    assert "a%2Bb/c" not in out
    assert "ck-123" not in out
    assert "abc.def" not in out
    assert "userId=u1" in out
    assert '"name": "ok"' in out


def test_redact_nested_mapping():
    out = redact({"user": {"userSecret": "s3cr3t", "id": 1}, "items": [{"access_token": "t"}]})
    assert out == {"user": {"userSecret": REDACTED, "id": 1}, "items": [{"access_token": REDACTED}]}


def test_every_log_line_is_redacted(capsys):
    configure_logging("DEBUG", json=True)
    try:
        get_logger().info(
            "snaptrade.accounts.list",
            user_secret="s3cr3t-value",
            url="https://x/accounts?userSecret=s3cr3t-value&clientId=C",
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
    record = json.loads(line)
    assert "s3cr3t-value" not in line
    assert record["user_secret"] == REDACTED
    assert record["event"] == "snaptrade.accounts.list"
