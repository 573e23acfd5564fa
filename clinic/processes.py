"""``make run``'s process manager: keeps each of the clinic's processes running.

A process that exits while the clinic is not stopping is started again after a pause that
doubles with each crash in a row (1, 2, 4 ... 30 s; a run of ``STABLE_SECONDS`` or more starts
the count again), with one log line each time; the others keep running. The clinic stops on
Ctrl-C or SIGTERM (every process gets one SIGTERM: nameko's graceful stop), or when one process
crashed ``CRASH_LIMIT`` times within ``CRASH_WINDOW_SECONDS`` (it cannot start: the supervisor
stops the rest and exits 1, naming it).

Children die with the supervisor even when it is killed with SIGKILL: each asks the kernel for
a SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so no orphan keeps consuming.

Under docker-compose and Kubernetes each service runs alone (``start.sh``) and exits when it
crashes; the orchestrator restarts it. This module is only for ``make run``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
STABLE_SECONDS = 30.0  # a run this long ends a streak of crashes
CRASH_LIMIT = 5
CRASH_WINDOW_SECONDS = 60.0
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Run:
    """One life of a child process, in monotonic seconds."""

    started: float
    ended: float


def restart_delay(runs: Sequence[Run]) -> float | None:
    """After the latest of ``runs`` ended in a crash: seconds to wait before starting the
    process again, or None when it crashed ``CRASH_LIMIT`` times within
    ``CRASH_WINDOW_SECONDS`` (give up)."""
    latest = runs[-1].ended
    recent = sum(1 for run in runs if latest - run.ended < CRASH_WINDOW_SECONDS)
    if recent >= CRASH_LIMIT:
        return None
    streak = 0
    for run in reversed(runs):
        streak += 1
        if run.ended - run.started >= STABLE_SECONDS:
            break
    return min(FIRST_DELAY_SECONDS * 2 ** (streak - 1), MAX_DELAY_SECONDS)


def die_with_parent() -> None:
    """``preexec_fn`` of a child: SIGTERM when the supervisor dies, however it dies (Linux;
    elsewhere children outlive a killed supervisor)."""
    parent = os.getppid()
    libc_name = ctypes.util.find_library("c")
    prctl = getattr(ctypes.CDLL(libc_name, use_errno=True), "prctl", None) if libc_name else None
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    runs: list[Run] = field(default_factory=list)
    restart_at: float | None = None


class Supervisor:
    """Starts ``commands`` (name -> argv), restarts what crashes, stops them all on a signal.
    ``run()`` returns the exit code: 0 after a signal, 1 when a process would not stay up."""

    def __init__(self, commands: Mapping[str, list[str]], cwd: str, env: Mapping[str, str],
                 stop_seconds: float, log: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 env_of: Callable[[str], Mapping[str, str]] = lambda name: {}) -> None:
        self.children = {name: Child(name, command) for name, command in commands.items()}
        self.cwd = cwd
        self.env = dict(env)
        self.env_of = env_of  # a child's own additions to ``env`` (its metrics port)
        self.stop_seconds = stop_seconds
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock
        self.stopping = False

    def start(self, child: Child) -> None:
        # A session of its own: a Ctrl-C in the terminal reaches the supervisor only, which
        # passes it on once, as SIGTERM (a second signal would cut nameko's graceful stop).
        child.process = subprocess.Popen(child.command, cwd=self.cwd,
                                         env={**self.env, **self.env_of(child.name)},
                                         start_new_session=True, preexec_fn=die_with_parent)
        child.started = self.clock()
        child.restart_at = None

    def stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        for child in self.children.values():
            self.start(child)
        exit_code = 0
        while not self.stopping:
            now = self.clock()
            for child in self.children.values():
                if child.restart_at is not None and now >= child.restart_at:
                    self.start(child)
                elif (child.restart_at is None and child.process.poll() is not None
                      and not self.crashed(child, now)):
                    exit_code = 1
                    self.stopping = True
                    break
            time.sleep(POLL_SECONDS)
        self.stop_all()
        return exit_code

    def crashed(self, child: Child, now: float) -> bool:
        """Schedule the restart of a child that exited; False when it is given up on."""
        child.runs.append(Run(child.started, now))
        code = child.process.returncode
        delay = restart_delay(child.runs)
        if delay is None:
            self.log(f"{child.name} exited (code {code}) {CRASH_LIMIT} times within "
                     f"{CRASH_WINDOW_SECONDS:g}s; stopping the clinic")
            return False
        self.log(f"{child.name} exited (code {code}); restarting it in {delay:g}s")
        child.restart_at = now + delay
        return True

    def stop_all(self) -> None:
        """One SIGTERM each, then wait for the graceful stops; SIGKILL what outlives them."""
        running = [c.process for c in self.children.values()
                   if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
