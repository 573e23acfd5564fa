"""``make run``: migrate every database, then run the four services and the gateway.

Each runs as its own ``nameko run`` process, exactly as it would alone (see each service's
``start.sh``); this process only starts them, forwards SIGINT/SIGTERM and stops them all when one
of them stops. The children get their own session so that a Ctrl-C reaches them once, from here,
as a single SIGTERM (a second signal would interrupt nameko's graceful stop).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import clinic  # noqa: F401 (quiets eventlet's notice)
from clinic import migrate
from clinic.access import admin_token_problem
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
    children = {
        name: subprocess.Popen([sys.executable, "-m", "clinic.cli", "run", "--config", config,
                                service], cwd=root, env=env, start_new_session=True)
        for name, (config, service) in PROCESSES.items()
    }
    print(f"clinic running: gateway at {settings.public_base_url} (Ctrl-C stops it)", flush=True)

    stopping = False

    def stop(signum=None, _frame=None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while any(child.poll() is None for child in children.values()):
        for name, child in children.items():
            if child.poll() is not None and not stopping:
                print(f"{name} stopped (exit {child.returncode}); stopping the rest",
                      file=sys.stderr)
                exit_code = child.returncode or 1
                stop()
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    for child in children.values():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.wait(remaining)
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
