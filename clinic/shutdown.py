"""A bound on the graceful stop: a service told to stop (SIGTERM) ends within a deadline.

``nameko run`` answers SIGTERM with a graceful stop: no new work, the workers in hand finish,
then the process exits. nameko 2.14 can wait forever if the signal comes while its consumers
are still starting (a few ms after "Connected to amqp"). Past ``SHUTDOWN_TIMEOUT_SECONDS`` the
process ends anyway: what it had not acknowledged RabbitMQ hands to another process, a change
is one transaction (committed whole or not at all), and a repeated booking change replays.
"""

from __future__ import annotations

import logging
import math
import signal

from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 30


class ShutdownDeadline(DependencyProvider):
    """Wraps the process's SIGTERM handler (``nameko run``'s graceful stop) with an alarm whose
    default action ends the process. Installed once per process in ``setup``: after ``nameko
    run`` set its handler, in the main thread that signals need, and before any extension
    starts (the hang is a stop that comes while they start)."""

    installed = False

    def setup(self) -> None:
        if ShutdownDeadline.installed:
            return
        graceful = signal.getsignal(signal.SIGTERM)
        if not callable(graceful):  # not under `nameko run` (tests): nothing to bound
            return
        seconds = max(1, math.ceil(float(self.container.config.get("SHUTDOWN_TIMEOUT_SECONDS")
                                         or DEFAULT_SECONDS)))
        log.info("on SIGTERM this process finishes its work in hand within %ss", seconds)

        def stop_within_deadline(signum, frame) -> None:
            # No logging here: a signal handler must not take eventlet's green locks.
            if not signal.getitimer(signal.ITIMER_REAL)[0]:  # a second SIGTERM: same bound
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(seconds)
            graceful(signum, frame)

        signal.signal(signal.SIGTERM, stop_within_deadline)
        ShutdownDeadline.installed = True
