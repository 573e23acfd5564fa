"""What the gateway adds to every answer for operators: the request id, HTTP metrics, /metrics.

``/metrics`` is answered only to addresses in ``METRICS_ALLOW`` (a comma list of CIDRs; by
default loopback and the private networks), anyone else gets the 404 an unknown path gets.
Requests are counted by route template (``/api/v1/bookings/{booking_id}``), never the raw path,
so no token or feed secret becomes a label.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from werkzeug.wrappers import Response

from clinic import deadletters
from clinic.metrics import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger(__name__)

ROUTE_KEY = "clinic.route"  # WSGI environ: the matched route's template
UNMATCHED = "unmatched"
DEFAULT_ALLOW = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(text: str | None) -> tuple[Network, ...]:
    """``METRICS_ALLOW`` as networks; an entry that is not a CIDR is logged and skipped."""
    networks = []
    for entry in (text if text and text.strip() else DEFAULT_ALLOW).split(","):
        if not entry.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.error("METRICS_ALLOW entry %r is not a network; ignored", entry.strip())
    return tuple(networks)


def allowed(address: str | None, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def metrics_allowed(peer: str | None, forwarded_for: str | None,
                    networks: Iterable[Network]) -> bool:
    """The peer and every address a proxy says it forwarded for must be allowed: behind the
    Ingress the peer is the (private) proxy, and the client's address is in X-Forwarded-For."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    return all(allowed(address, networks) for address in [peer, *hops])


class DeadLetters(Collector):
    """``clinic_dead_letters{queue}``: events parked after their handler kept failing, read from
    the broker at scrape time (one gateway's answer is the whole clinic's, like the database
    gauges: query it with ``max``). No sample while the broker cannot be asked."""

    def __init__(self, amqp_uri: str,
                 counts: Callable[[str], dict[str, int]] = deadletters.counts) -> None:
        self.amqp_uri = amqp_uri
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("clinic_dead_letters",
                                   "Events waiting in a dead-letter queue, by queue",
                                   labels=["queue"])
        try:
            waiting = self.counts(self.amqp_uri)
        except Exception as error:  # the broker away: the services' own alerts say so
            log.warning("dead letters not counted: %s", type(error).__name__)
            return
        for queue, count in sorted(waiting.items()):
            family.add_metric([queue], count)
        yield family


def metrics_response(amqp_uri: str) -> Response:
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(DeadLetters(amqp_uri))
    body = generate_latest() + generate_latest(scraped)
    return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)


def observe(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route).observe(seconds)
