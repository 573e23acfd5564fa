"""Where a booking's CPU goes: the whole clinic under bookings at 32 clients, every process
sampled by py-spy, then per process its share of CPU and its costliest functions.

Run: `python bench/_profile.py [--bookings 960] [--top 25]` (py-spy from PyPI; root or
ptrace rights). Not part of `make bench`: it prints no goal, only where the time goes.
The raw samples stay in the printed folder (``<process>.txt``, collapsed stacks).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

import requests
from _system import System, cpu_seconds, descendants  # also puts the project on sys.path
from booking import ADMIN_TOKEN, load, work_left

PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")
OURS = ("(clinic/", "(services/", "(gateway/")


def process_name(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        words = cmdline.read().split(b"\0")
    for word in words:
        if b"Service" in word and b":" in word:
            return word.decode().rsplit(":", 1)[1]
    return "supervisor"


def summary(path: str, top: int) -> None:
    """Self and inclusive samples per function, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():  # a frame's text broken over lines: not a sample line
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
            # the innermost frame of our own code: what of ours the time was spent under
            for frame in reversed(frames):
                if any(part in frame for part in OURS):
                    ours[frame] += samples
                    break
    if not total:
        return
    for title, counter in (("inclusive", inclusive), ("self", own),
                           ("innermost clinic frame", ours)):
        print(f"  -- {title} (share of this process's samples)")
        for frame, samples in counter.most_common(top):
            print(f"    {100 * samples / total:5.1f}%  {frame[:140]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=960)
    parser.add_argument("--top", type=int, default=25)
    arguments = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="clinic-profile-")
    with System(ADMIN_TOKEN) as system:
        gateway = system.base
        headers = system.admin
        requests.post(gateway + "/api/v1/therapists", headers=headers, timeout=10, json={
            "id": "dr-bench", "name": "Dr Bench", "specialties": ["dit"],
            "email": "dr-bench@clinic.example", "modalities": ["video"],
            "timezone": "UTC"}).raise_for_status()
        requests.put(gateway + "/api/v1/therapists/dr-bench/schedule", headers=headers,
                     timeout=10, json={
                         "timezone": "UTC", "buffer_minutes": 10, "min_notice_hours": 0,
                         "horizon_days": 365,
                         "weekly": [{"weekday": d, "start": "00:00", "end": "23:00",
                                     "modalities": ["video"]} for d in (
                                         "monday", "tuesday", "wednesday", "thursday",
                                         "friday", "saturday", "sunday")]}).raise_for_status()
        from datetime import UTC, datetime, timedelta
        first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        starts = iter(first + timedelta(hours=h) for h in range(24 * 300)
                      if (first.hour + h) % 24 < 23)
        import threading
        lock = threading.Lock()

        def book(session: requests.Session, index: int) -> int:
            with lock:
                start = next(starts).isoformat()
            return session.post(gateway + "/api/v1/bookings", timeout=30, json={
                "therapist_id": "dr-bench", "session_type": "dit-session", "modality": "video",
                "start": start, "client": {"name": f"Client {index}",
                                           "email": f"c{index}@example.org"}}).status_code

        drained = work_left(system.databases)
        load(1, 5, book, drained, ok=201)  # warm up
        pids = [p for p in descendants(system.process.pid) if p != system.process.pid]
        names = {pid: process_name(pid) for pid in pids}
        cpu_before = {pid: cpu_seconds(pid) for pid in pids}
        spies = {pid: subprocess.Popen(
            [PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
             "--nonblocking", "--output", os.path.join(folder, f"{names[pid]}-{pid}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids}
        time.sleep(1)
        result = load(32, arguments.bookings, book, drained,
                      lambda: cpu_seconds(system.process.pid), ok=201)
        cpu_after = {pid: cpu_seconds(pid) for pid in pids}
        for spy in spies.values():
            spy.send_signal(2)
        for spy in spies.values():
            spy.wait(30)
    done = result["statuses"].get(201, 0)
    print(f"{done} bookings at 32 clients; {result['throughput']:.1f}/s sustained; "
          f"{result['cpu_ms']:.1f} ms of clinic CPU each")
    print("CPU ms per booking by process:")
    for pid in sorted(pids, key=lambda p: cpu_before[p] - cpu_after[p]):
        print(f"  {names[pid]:24s} {(cpu_after[pid] - cpu_before[pid]) * 1000 / done:7.1f}")
    for pid in sorted(pids, key=lambda p: cpu_before[p] - cpu_after[p]):
        path = os.path.join(folder, f"{names[pid]}-{pid}.txt")
        if os.path.exists(path):
            print(f"\n== {names[pid]} ({path})")
            summary(path, arguments.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
