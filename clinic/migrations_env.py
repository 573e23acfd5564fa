"""The body of every service's alembic ``env.py``: online migrations against one URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, engine_from_config, pool

MIGRATION_LOCK = 5_245_371  # any constant: the advisory lock id our migrations share


def run(metadata: MetaData) -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas started together (--scale booking=3) migrate one at a time.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()
