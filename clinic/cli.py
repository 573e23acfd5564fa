"""``python -m clinic.cli run ...``: nameko's own command line, with our warning filter."""

from nameko.cli.main import main

import clinic  # noqa: F401 (the filter must be installed before nameko imports eventlet)

if __name__ == "__main__":
    main()
