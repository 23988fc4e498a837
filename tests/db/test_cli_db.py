"""`brokerlink db …`."""

from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.db import migrate

runner = CliRunner()


def test_upgrade_current_downgrade_stamp(fresh_db_url):
    def run(*args: str) -> str:
        result = runner.invoke(app, ["db", *args, "--url", fresh_db_url])
        assert result.exit_code == 0, result.output
        return result.output

    assert run("current").strip() == "base"
    assert "at 0007" in run("upgrade")
    assert run("current").strip() == "0007 (head)"
    assert "at 0001" in run("downgrade", "0001")
    assert run("current").strip() == "0001"
    assert "at base" in run("downgrade", "base")
    assert "stamped 0001" in run("stamp", "0001")
    assert migrate.current(fresh_db_url) == ("0001",)


def test_default_database_is_an_sqlite_file_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BROKERLINK_DATA_DIR", str(tmp_path / "nested" / "data"))
    from brokerlink.config import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert (tmp_path / "nested" / "data" / "brokerlink.db").exists()
