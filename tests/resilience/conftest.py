"""The private servers every resilience test module shares (``infra.py``), one per module."""

from tests.resilience.infra import mail_catcher, postgres_cluster, rabbit_node  # noqa: F401
