"""``python -m clinic.healthcheck SERVICE``: exit 0 when the service answers ``ping`` over RPC.

Used by docker-compose's healthchecks; reads AMQP_URI like the services do.
"""

import clinic  # noqa: F401  isort: skip
import eventlet  # isort: skip

eventlet.monkey_patch()

import sys  # noqa: E402

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from clinic.settings import Settings  # noqa: E402


def main(service: str) -> int:
    try:
        config = {"AMQP_URI": Settings.from_env().amqp_uri}
        with eventlet.Timeout(5), ClusterRpcProxy(config) as rpc:
            return 0 if getattr(rpc, service).ping() == "pong" else 1
    except (Exception, eventlet.Timeout) as error:
        print(f"{service} is not answering: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
