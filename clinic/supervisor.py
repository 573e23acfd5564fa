"""``make run``: migrate every database, then run the four services and the gateway.

Each runs as its own ``nameko run`` process, exactly as it would alone (see each service's
``start.sh``); ``clinic.processes.Supervisor`` restarts one that crashes (with backoff), passes
Ctrl-C/SIGTERM on to all of them once, and gives up on one that keeps crashing at start.
"""

from __future__ import annotations

import os
import subprocess
import sys

import clinic  # noqa: F401 (quiets eventlet's notice)
from clinic import migrate
from clinic.access import admin_token_problem
from clinic.processes import Supervisor
from clinic.settings import Settings

PROCESSES = {
    "availability": ("services/availability/config.yml",
                     "services.availability.service:AvailabilityService"),
    "booking": ("services/booking/config.yml", "services.booking.service:BookingService"),
    "notifications": ("services/notifications/config.yml",
                      "services.notifications.service:NotificationsService"),
    "progress": ("services/progress/config.yml", "services.progress.service:ProgressService"),
    "gateway": ("gateway/config.yml", "gateway.service:GatewayService"),
}
# Run once with ``python -m`` after the migrations, before the services start: each service's
# own set-up commands (shared code never imports a service).
SETUP = {
    "availability": "services.availability.demo",  # the demo clinic, when CLINIC_DEMO is on
}


def broker_reachable(amqp_uri: str) -> str | None:
    """None when RabbitMQ accepts a connection, else why not."""
    from kombu import Connection

    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # any failure to connect is reported the same way
        return str(error) or type(error).__name__
    return None


def metrics_port_of(name: str) -> dict[str, str]:
    """``METRICS_PORT`` is the first of consecutive ports, one per service process, in the
    order of PROCESSES (the gateway serves /metrics on its own port)."""
    base = int(os.environ.get("METRICS_PORT") or 0)
    services = [n for n in PROCESSES if n != "gateway"]
    if base <= 0 or name not in services:
        return {"METRICS_PORT": "0"}
    return {"METRICS_PORT": str(base + services.index(name))}


def main() -> int:
    settings = Settings.from_env()
    refusal = admin_token_problem(settings.admin_token)
    if refusal:
        print(f"refusing to start: {refusal}", file=sys.stderr)
        return 2
    problem = broker_reachable(settings.amqp_uri)
    if problem:
        safe_uri = settings.amqp_uri.split("@")[-1]
        print(f"RabbitMQ is not reachable at {safe_uri} ({problem}); start it with "
              "`rabbitmq-server -detached` (or `docker compose up -d rabbitmq`), or set AMQP_URI.",
              file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.main([])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")]))}
    for name, module in SETUP.items():
        if subprocess.run([sys.executable, "-m", module], cwd=root, env=env).returncode:
            print(f"{name} set-up ({module}) failed", file=sys.stderr)
            return 1
    commands = {name: [sys.executable, "-m", "clinic.cli", "run", "--config", config, service]
                for name, (config, service) in PROCESSES.items()}
    stop_seconds = float(os.environ.get("SHUTDOWN_TIMEOUT_SECONDS") or 30) + 5
    supervisor = Supervisor(commands, cwd=root, env=env, stop_seconds=stop_seconds,
                            env_of=metrics_port_of)
    print(f"clinic running: gateway at {settings.public_base_url} (Ctrl-C stops it)", flush=True)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
