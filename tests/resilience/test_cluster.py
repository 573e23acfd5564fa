"""The clinic on a three-node RabbitMQ cluster: work queues are quorum queues, AMQP_URI lists
every node (``;``), and under the mixed load one node is SIGKILLed and started again 5 s later.
Every promise of ``invariants`` holds (no answered 201 lost, one email each, projections
equal, no double booking), 503s only inside the fault's window; the figures are recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from clinic.queues import work_queues
from tests.resilience.cluster import RabbitCluster, rabbit_cluster  # noqa: F401 (fixture)
from tests.resilience.infra import postgres_cluster  # noqa: F401
from tests.resilience.test_faults import Clinic, clinic_on, mail, run_under_load  # noqa: F401

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]


@pytest.fixture
def cluster_clinic(rabbit_cluster: RabbitCluster, postgres_cluster, mail,  # noqa: F811
                   tmp_path) -> Iterator[Clinic]:
    """The clinic with AMQP_URI listing the three nodes (its vhost made through the first)."""
    with clinic_on(rabbit_cluster.nodes[0], rabbit_cluster.amqp_uri, postgres_cluster, mail,
                   tmp_path) as system:
        yield system


def queue_types(cluster: RabbitCluster, vhost: str) -> dict[str, str]:
    listed = cluster.ctl("-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type")
    return dict(line.split()[:2] for line in listed.splitlines() if len(line.split()) >= 2)


def test_a_node_killed_under_load_loses_nothing(cluster_clinic, rabbit_cluster):  # noqa: F811
    types = queue_types(rabbit_cluster, cluster_clinic.vhost)
    expected = {queue.name for queue in work_queues({"AMQP_URI": "amqp://"})}
    work = {name: kind for name, kind in types.items() if name in expected}
    assert work.keys() == expected and set(work.values()) == {"quorum"}, work
    per_process = {n: k for n, k in types.items() if n not in work}
    assert per_process and set(per_process.values()) == {"classic"}, per_process

    # the node every process connected to first (the first of AMQP_URI's list)
    victim = rabbit_cluster.nodes[0]

    def kill_and_restart() -> None:
        victim.kill()
        time.sleep(5)
        victim.start()

    run_under_load(cluster_clinic, kill_and_restart, "cluster_node_killed")
    rabbit_cluster.wait_running(3)
