"""A mail server the resilience tests can stop and start: ``python -m tests.resilience.mailcatcher
--port P --folder D``.

It runs as its own process (not aiosmtpd in the test process, as the e2e tests do) so that a test
can take the mail server away, the way an outage would, while the clinic keeps running: a
SIGTERM closes the listening socket and exits; the next start listens on the same port again.
Every accepted message becomes one file in D, named by a sequence number that keeps growing
across restarts, so reading the folder sorted by name gives the arrival order. A message is
written to a hidden temporary name and renamed into place before the server answers 250, so a
reader never sees half a message and a sender that was told "accepted" finds its file there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

SUFFIX = ".eml"


def next_sequence(folder: Path) -> int:
    """One more than the highest message number in the folder, so a restart appends."""
    numbers = [int(path.stem) for path in folder.glob(f"*{SUFFIX}") if path.stem.isdigit()]
    return max(numbers, default=0) + 1


class FolderHandler:
    """aiosmtpd handler: each message into its own file, atomically, before the 250 reply."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sequence = itertools.count(next_sequence(folder))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        number = next(self.sequence)
        # the envelope, which a Bcc'd or re-sent message does not show in its headers
        trace = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                 f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        content = envelope.original_content or b""
        temporary = self.folder / f".{number:08d}.tmp"
        with open(temporary, "wb") as file:
            file.write(trace + content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.folder / f"{number:08d}{SUFFIX}")
        return "250 Message accepted for delivery"


async def serve(port: int, folder: Path) -> None:
    """Listen until SIGTERM or SIGINT, then close the listening socket and return."""
    loop = asyncio.get_running_loop()
    handler = FolderHandler(folder)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailcatcher", ident="mailcatcher"),
        host="127.0.0.1", port=port, reuse_address=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print(f"mailcatcher listening on 127.0.0.1:{port}, writing to {folder}", flush=True)
    await stopping.wait()
    server.close()
    # from Python 3.12 this also waits for open sessions; a stuck client must not hang us
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 2)
    print("mailcatcher stopped", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    arguments = parser.parse_args(argv)
    arguments.folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(arguments.port, arguments.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
