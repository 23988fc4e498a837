"""The throwaway-PostgreSQL helper shared by the fixtures and the benchmark."""

from pathlib import Path

import pytest

from brokerlink.db import migrate
from tests.fixtures import postgres_server


def test_missing_binaries_fail_naming_the_debian_package(monkeypatch):
    monkeypatch.setattr(postgres_server.glob, "glob", lambda pattern: [])

    with pytest.raises(RuntimeError, match=r"apt-get install postgresql"):
        postgres_server.find_pg_bin()


def test_finds_the_newest_installed_server():
    bin_dir = postgres_server.find_pg_bin()

    assert (bin_dir / "initdb").exists()
    assert (bin_dir / "pg_ctl").exists()


def test_migrations_ship_inside_the_package():
    import brokerlink

    assert migrate.MIGRATIONS_DIR.parent == Path(brokerlink.__file__).parent
    assert (migrate.MIGRATIONS_DIR / "env.py").exists()
    assert migrate.heads() == ["0007"]
