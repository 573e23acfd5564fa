"""Apply each service's alembic migrations: ``python -m clinic.migrate [service ...]``."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from clinic.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(service: str, url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, url), "head")


def main(argv: list[str]) -> int:
    settings = Settings.from_env()
    for service in argv or SERVICES:
        upgrade(service, settings.database_url(service))
        print(f"{service}: database at head", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
