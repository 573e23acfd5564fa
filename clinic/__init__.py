"""Code every clinic service shares: settings, database, clock, errors, events.

Eventlet warns on import that it is in maintenance mode. We chose it knowingly (nameko 2.14
runs on it), so the notice would only clutter every service's log; importing this package
first, as every entry point does, silences it.
"""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
