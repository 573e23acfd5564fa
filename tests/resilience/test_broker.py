"""The broker away for a while, under load: no service may die of it, and every one consumes
again within ``RECOVERY_LIMIT`` seconds of the broker's return, by itself.

(a) RabbitMQ's application stopped for 30 s (``rabbitmqctl stop_app``, then ``start_app``): the
node closes every connection and refuses new ones, while availability has calls in hand;
(b) the node killed with SIGKILL and started again 20 s later; (c) a booking process killed
while the broker is down, and its replacement started (as ``make run``'s supervisor would)
before the broker is back.

Beside ``run_under_load``'s checks (answers, what clients were told, no double booking, events
applied, every letter once), each scenario checks that every process is alive, and that every
work queue (``rpc-*``, ``evt-*``) has a consumer again, timing that from the broker's return.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.resilience.test_faults import ARTIFACTS, INSTANCES, Clinic, clinic, mail, run_under_load

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]

__all__ = ["clinic", "mail"]  # fixtures, used by name

RECOVERY_LIMIT = 10.0  # seconds from the broker's return until every service consumes again


def queues(clinic: Clinic) -> list[tuple[str, int, int]]:
    """(name, messages, consumers) of every queue in the clinic's vhost, from rabbitmqctl."""
    listing = clinic.rabbit.ctl("list_queues", "-p", clinic.vhost, "--no-table-headers",
                                "--quiet", "name", "messages", "consumers", timeout=30).stdout
    found = []
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            found.append((parts[0], int(parts[1]), int(parts[2])))
    return found


def unconsumed(clinic: Clinic) -> list[str]:
    """Work queues with no consumer (reply queues of killed processes and dead-letter queues
    have none by design)."""
    return [name for name, _, consumers in queues(clinic)
            if name.startswith(("rpc-", "evt-")) and not name.endswith(".dead")
            and consumers == 0]


class Recovery:
    """Times how long after the broker's return every work queue has a consumer again (an upper
    bound: each ``rabbitmqctl`` poll itself takes a second or two)."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.seconds: float | None = None
        self.left: list[str] = []

    def watch(self, back: float, limit: float = 60.0) -> None:
        """Poll from ``back`` (when the broker accepted connections again) up to ``limit``."""
        while time.monotonic() - back < limit:
            try:
                self.left = unconsumed(self.clinic)
            except RuntimeError:  # the node still booting its queues
                self.left = ["(rabbitmqctl not answering)"]
            if not self.left:
                self.seconds = time.monotonic() - back
                return
            time.sleep(0.25)


def dead_processes(clinic: Clinic) -> list[str]:
    return [f"{name} is not running (exit {clinic.processes.children[name].process.returncode})"
            for name, _ in INSTANCES if not clinic.processes.alive(name)]


def broker_scenario(clinic: Clinic, name: str, take_away, bring_back, down_seconds: float,
                    while_down=None) -> None:
    recovery = Recovery(clinic)

    def fault() -> None:
        take_away()
        began = time.monotonic()
        if while_down is not None:
            while_down()
        time.sleep(max(0.0, down_seconds - (time.monotonic() - began)))
        bring_back()
        recovery.watch(time.monotonic())

    problems: list[str] = []
    try:
        run_under_load(clinic, fault, name, duration=max(down_seconds + 35, 60))
    except AssertionError as failed:
        problems.append(str(failed))
    problems += dead_processes(clinic)
    problems += [f"no consumer on {queue}" for queue in unconsumed(clinic)]
    if recovery.seconds is None:
        problems.append(f"not every queue consumed 60 s after the broker's return: "
                        f"{recovery.left}")
    elif recovery.seconds > RECOVERY_LIMIT:
        problems.append(f"consuming again only {recovery.seconds:.1f}s after the broker's return")
    figures_file = ARTIFACTS / f"{name}.txt"
    if figures_file.exists():
        head, _, rest = figures_file.read_text().partition("\n")
        figures = json.loads(head)
        figures["recovered_s"] = round(recovery.seconds, 1) if recovery.seconds else None
        figures_file.write_text(json.dumps(figures) + "\n" + rest)
        print(f"{name}: consuming again {figures['recovered_s']} s after the broker's return")
    assert problems == [], "\n".join(problems)


def test_rabbitmq_application_stopped_for_30_seconds(clinic):
    def stop_app_with_work_in_hand() -> None:
        # Availability is frozen for a second first, so calls reach it and wait in its socket:
        # when it thaws, the broker has gone and their replies cannot be sent (nameko 2.14
        # alone kills the service for that, after its publish retries run out).
        clinic.processes.kill("availability", signal.SIGSTOP)
        time.sleep(1.0)
        clinic.rabbit.ctl("stop_app")
        clinic.processes.kill("availability", signal.SIGCONT)

    broker_scenario(clinic, "rabbitmq_stop_app_30s", stop_app_with_work_in_hand,
                    lambda: clinic.rabbit.ctl("start_app"), down_seconds=30)


def test_rabbitmq_node_killed_and_back_after_20_seconds(clinic):
    broker_scenario(clinic, "rabbitmq_sigkill_20s", clinic.rabbit.kill, clinic.rabbit.start,
                    down_seconds=20)


def test_booking_process_killed_while_the_broker_is_down(clinic):
    def replace_booking() -> None:
        time.sleep(3)
        clinic.processes.kill("booking-1", signal.SIGKILL)
        time.sleep(2)
        clinic.processes.start("booking-1", "booking")  # what the supervisor does

    broker_scenario(clinic, "booking_killed_broker_down", lambda: clinic.rabbit.ctl("stop_app"),
                    lambda: clinic.rabbit.ctl("start_app"), down_seconds=20,
                    while_down=replace_booking)
