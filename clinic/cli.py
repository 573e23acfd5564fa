"""``python -m clinic.cli run ...``: nameko's own command line, with our warning filter."""

import clinic  # noqa: F401  isort: skip (the filter must be installed before eventlet loads)
import eventlet  # isort: skip

# Before anything imports kombu (clinic.errors does, through nameko.rpc): kombu's retry loops
# bind ``time.sleep`` when imported, and an unpatched one freezes the whole process for each
# pause while the broker is away. ``nameko run`` patches again, which changes nothing.
eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.cli.main import main  # noqa: E402

from clinic.errors import StartupRefused  # noqa: E402

if __name__ == "__main__":
    try:
        main()
    except StartupRefused as refusal:  # a configuration that must not run: one line, no trace
        print(f"refusing to start: {refusal}", file=sys.stderr)
        sys.exit(2)
