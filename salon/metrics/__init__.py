"""Prometheus metrics: every long-running Salon process answers ``GET /metrics``.

- :mod:`salon.metrics.catalog`: every family exported, with its labels (the dashboard and
  the tests read it);
- :mod:`salon.metrics.access`: loopback callers only, or the bearer token
  ``SALON_METRICS_TOKEN``;
- :mod:`salon.metrics.registry`: one registry per process, the process's own counters,
  the companion process seen from the Rasa server, the action server's latency;
- :mod:`salon.metrics.business`: what Salon did and what it costs, read from the
  database by one process (``SALON_METRICS_BUSINESS``);
- :mod:`salon.metrics.serve`: the route on the aiohttp processes and the outbound
  worker's own small server.

Where each process serves it: the Rasa server at ``/webhooks/whatsapp/metrics`` (with the
companion process's figures), the action server, the GDPR API and the outbound API at
``/metrics``, an outbound worker at ``/metrics`` on ``SALON_OUTBOUND_METRICS_PORT`` (plus
its shard index).
"""

from salon.metrics.access import MetricsAccess, MetricsConfigError
from salon.metrics.registry import MetricsAnswer, ProcessMetrics

__all__ = ["MetricsAccess", "MetricsAnswer", "MetricsConfigError", "ProcessMetrics"]
