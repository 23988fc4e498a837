"""`brokerlink institutions`: the map in force; a bad operator file is shown and never used."""

from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.config import get_settings

runner = CliRunner()


def _run(*args, env=None):
    get_settings.cache_clear()
    try:
        return runner.invoke(app, ["institutions", *args], env={"COLUMNS": "200", **(env or {})})
    finally:
        get_settings.cache_clear()


def test_lists_the_provider_and_reason_per_institution():
    result = _run("--popular")
    assert result.exit_code == 0, result.output
    assert "Charles Schwab" in result.output
    assert "snaptrade" in result.output
    assert "plaid" in result.output


def test_a_bad_override_file_is_shown_and_the_shipped_map_stays(tmp_path):
    bad = tmp_path / "coverage.toml"
    bad.write_text("[[institution]]\nslug = 'x'\n")
    result = _run(env={"BROKERLINK_COVERAGE_FILE": str(bad)})
    assert result.exit_code == 1
    assert "coverage file rejected" in result.output
    assert "brokerlink/routing/coverage.toml" in result.output
    assert "Charles Schwab" in result.output


def test_feature_flag_routes_brokerages_to_plaid():
    result = _run("--popular", env={"ENABLE_SNAPTRADE": "false"})
    assert result.exit_code == 0, result.output
    assert "snaptrade" not in result.output  # no institution opens with SnapTrade
    assert "SnapTrade is turned off" in " ".join(result.output.split())
