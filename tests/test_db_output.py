"""Reading what alembic, `ls` and `stat` print on a host (pure: no host needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.config.apps_file import DatabaseConfig
from runners.alembic_output import parse_current, sql_text
from runners.backups import backup_location, parse_listing, parse_stat


def test_alembic_current_skips_log_lines_and_noise() -> None:
    out = (
        "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n"
        "INFO  [alembic.runtime.migration] Will assume transactional DDL.\n"
        "d4e5f6a1b2c3 (head)\n"
        "Traceback: nothing to see\n"
    )
    assert parse_current(out, {"b2c3d4e5f6a1"}) == ["d4e5f6a1b2c3"]
    assert parse_current("INFO  [alembic] Context impl.\n", set()) == []  # an empty database


def test_downgrade_sql_without_alembic_log_lines() -> None:
    out = "INFO  [alembic.runtime.migration] Running downgrade\nDROP TABLE coupons;\n\nCOMMIT;"
    assert sql_text(out) == "DROP TABLE coupons;\n\nCOMMIT;"


def test_backups_listed_and_stated() -> None:
    listing = "/var/backups/a.sql\nls: cannot access '/x/*.sql': No such file\n/var/b;rm.sql\n"
    assert parse_listing(listing) == ["/var/backups/a.sql"]
    assert parse_stat("2048 1795000000 /var/backups/a.sql\ngarbage\n") == {
        "/var/backups/a.sql": (2048, 1795000000.0)
    }


def test_a_new_backup_goes_where_the_listing_finds_it() -> None:
    db = DatabaseConfig(run_on="web1", backups="ls -1t /srv/dumps/mydb-*.sql")
    at = datetime(2026, 11, 29, 3, 4, 5, tzinfo=UTC)
    assert backup_location(db, "myapp", "ab12", at) == "/srv/dumps/mydb-ab12-20261129T030405Z.sql"
    plain = DatabaseConfig(run_on="web1")
    assert backup_location(plain, "myapp", "ab12", at) == (
        "/var/backups/myapp-ab12-20261129T030405Z.sql"
    )
