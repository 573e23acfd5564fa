"""``python -m clinic.cli run ...``: nameko's own command line, with our warning filter."""

import sys

from nameko.cli.main import main

import clinic  # noqa: F401 (the filter must be installed before nameko imports eventlet)
from clinic.errors import StartupRefused

if __name__ == "__main__":
    try:
        main()
    except StartupRefused as refusal:  # a configuration that must not run: one line, no trace
        print(f"refusing to start: {refusal}", file=sys.stderr)
        sys.exit(2)
