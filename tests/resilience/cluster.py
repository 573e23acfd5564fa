"""A private three-node RabbitMQ cluster for the tests: three ``RabbitNode``s (see infra.py)
with their own node names, ports and data folders, one Erlang cookie, joined with
``rabbitmqctl join_cluster``. Nodes can be SIGKILLed and started again; a restarted node
rejoins the cluster from its own data folder."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.resilience.infra import RabbitNode, _Server, scratch_folder, wait_until


class RabbitCluster(_Server):
    def __init__(self, folder: Path, size: int = 3) -> None:
        super().__init__(folder)
        cookie = secrets.token_hex(16).upper()
        self.nodes = [RabbitNode(folder / f"node{i + 1}") for i in range(size)]
        for node in self.nodes:  # distribution needs one cookie on every node and CLI call
            path = node.folder / ".erlang.cookie"
            path.chmod(0o600)
            path.write_text(cookie)
            path.chmod(0o400)

    def start(self) -> None:
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.nodename)
            node.ctl("start_app")
        self.wait_running(len(self.nodes))

    def running_nodes(self) -> int:
        node = next(n for n in self.nodes if n.running)
        status = node.ctl("cluster_status", "--formatter", "json", check=False)
        if status.returncode != 0:
            return 0
        return len(json.loads(status.stdout).get("running_nodes", []))

    def wait_running(self, count: int, timeout: float = 120) -> None:
        wait_until(lambda: self.running_nodes() == count, timeout,
                   f"{count} running nodes in the cluster", poll=1)

    def ctl(self, *args: str, **options) -> str:
        """rabbitmqctl through the first running node."""
        node = next(n for n in self.nodes if n.running)
        return node.ctl(*args, **options).stdout

    def amqp_uri(self, vhost: str) -> str:
        """Every node, ``;``-separated: kombu fails over between them."""
        return ";".join(node.amqp_uri + vhost for node in self.nodes)

    def stop(self) -> None:
        """Close every node (their folders go with them; ``close()`` deletes ours)."""
        for node in reversed(self.nodes):
            node.close()


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    with RabbitCluster(scratch_folder("rabbit-cluster")) as cluster:
        cluster.start()
        yield cluster
