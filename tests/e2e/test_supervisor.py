"""``make run``'s supervisor with the whole clinic: a crashed service comes back by itself, and
nothing outlives a supervisor killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from clinic.supervisor import PROCESSES

pytestmark = pytest.mark.e2e


def process_state(pid: int) -> str | None:
    """The kernel's state letter of ``pid`` (Z: a zombie), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")


def services_of(supervisor_pid: int) -> dict[str, int]:
    """The supervisor's living children, by the name of the process they run."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != supervisor_pid or not alive(int(entry.name)):
            continue
        for name, (_, service) in PROCESSES.items():
            if service.encode() in command:
                found[name] = int(entry.name)
    return found


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g}s"
        time.sleep(0.2)


def test_a_crashed_service_is_restarted_and_the_others_keep_running(clinic_factory):
    system = clinic_factory("sqlite")
    before = services_of(system.process.pid)
    assert set(before) == set(PROCESSES)

    os.kill(before["booking"], signal.SIGKILL)
    wait_for(lambda: services_of(system.process.pid).get("booking", before["booking"])
             != before["booking"], 15, "a new booking process")
    system.wait_ready()
    after = services_of(system.process.pid)
    assert {name: pid for name, pid in after.items() if name != "booking"} == \
        {name: pid for name, pid in before.items() if name != "booking"}
    assert system.process.poll() is None
    system.log.flush()
    log = Path(system.log.name).read_text(errors="replace")
    assert "booking exited (code -9); restarting it in 1s" in log


def test_no_service_outlives_a_supervisor_killed_with_sigkill(clinic_factory):
    system = clinic_factory("sqlite", SHUTDOWN_TIMEOUT_SECONDS="5")
    children = services_of(system.process.pid)
    assert set(children) == set(PROCESSES)
    system.process.kill()
    system.process.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in children.values()), 20,
             "every service to end with its supervisor")
