"""Alembic environment of myapp: online and offline (--sql) migrations."""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)
    APP_DIR = Path(config.config_file_name).resolve().parent
else:
    APP_DIR = Path.cwd()


def database_url() -> str:
    """$DATABASE_URL, else the file .db_url of the app, else a SQLite file next to it."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    url_file = APP_DIR / ".db_url"
    if url_file.is_file():
        url = url_file.read_text(encoding="utf-8").strip()
        if url:
            return url
    return f"sqlite:///{APP_DIR / 'app.db'}"


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=None,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    section = dict(config.get_section(config.config_ini_section) or {})
    section["sqlalchemy.url"] = database_url()
    connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
