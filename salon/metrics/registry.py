"""One process's metrics: its own registry, its collectors, and the answer to ``GET /metrics``.

Each process builds one :class:`ProcessMetrics` (never prometheus-client's global
registry: two processes in one test, or two servers in one process, stay apart). It holds
the process collector (CPU, memory, descriptors), ``salon_process_info``, and whatever the
process adds: counters it keeps (:class:`StatsCollector`), the companion process's
(:class:`IoMetrics`), the action server's latency (:class:`ActionMetrics`), the business
metrics (:class:`salon.metrics.business.BusinessMetrics`).

A scrape first awaits every source that needs I/O (a database read, a call to the
companion process) in the server's loop; the text is then written from what they left, in
a worker thread (the exposition is synchronous and reads ``/proc``). Nothing in the
exposition blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from salon import __version__
from salon.metrics.access import MetricsAccess, MetricsConfigError
from salon.metrics.catalog import ACTION_BUCKETS, family
from salon.webhook.rpc import RemoteError

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIONS",
    "ENV_BUSINESS",
    "GDPR_API",
    "OUTBOUND_API",
    "PROCESSES",
    "RASA",
    "WORKER",
    "ActionMetrics",
    "IoMetrics",
    "MetricsAnswer",
    "ProcessMetrics",
    "StatsCollector",
    "io_snapshot",
    "reads_business",
]

RASA: Final = "rasa"
ACTIONS: Final = "actions"
WORKER: Final = "worker"
GDPR_API: Final = "gdpr-api"
OUTBOUND_API: Final = "outbound-api"
PROCESSES: Final = (RASA, ACTIONS, WORKER, GDPR_API, OUTBOUND_API)
ENV_BUSINESS: Final = "SALON_METRICS_BUSINESS"
"""Which process reads the business metrics from the database: one of :data:`PROCESSES`
(``rasa`` by default) or ``off``. Set it to ``off`` on every replica but one (or name a
process that runs once, such as ``gdpr-api``) so the figures are not read, and summed,
several times."""

IO_CALL_TIMEOUT: Final = 2.0
"""The companion process's counters not received by then: ``salon_io_up`` 0 for this scrape."""


def reads_business(process: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``process`` is the one that exposes the business metrics
    (:class:`~salon.metrics.access.MetricsConfigError` for a name that is no process).
    """
    chosen = (environ if environ is not None else os.environ).get(ENV_BUSINESS, "").strip().lower() or RASA
    if chosen not in PROCESSES and chosen != "off":
        raise MetricsConfigError(f"{ENV_BUSINESS} must be one of {', '.join(PROCESSES)} or off, got {chosen!r}")
    return chosen == process


class Refreshable(Protocol):
    """A source whose figures need I/O before each exposition."""

    async def refresh(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MetricsAnswer:
    """What to answer to ``GET /metrics``: status, body and headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


_REFUSED: Final = {
    401: MetricsAnswer(401, b"metrics: a bearer token is required\n",
                       {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": "Bearer"}),
    403: MetricsAnswer(403, b"metrics: loopback callers only\n", {"Content-Type": "text/plain; charset=utf-8"}),
}


class _Info(Collector):
    def __init__(self, process: str) -> None:
        self.process = process

    def collect(self) -> Iterable[Metric]:
        entry = family("salon_process_info")
        info = GaugeMetricFamily(entry.name, entry.help, labels=entry.labels)
        info.add_metric([self.process, __version__], 1)
        yield info


class ProcessMetrics:
    """The metrics of one process (``process``: one of :data:`PROCESSES`), served to the
    callers ``access`` admits.
    """

    def __init__(self, process: str, access: MetricsAccess | None = None) -> None:
        self.process = process
        self.access = access if access is not None else MetricsAccess.from_env()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_Info(process))
        self._sources: list[Refreshable] = []

    def add(self, collector: Collector) -> None:
        """Expose ``collector``'s families; when it has an async ``refresh``, it is awaited
        before each exposition.
        """
        self.registry.register(collector)
        if callable(getattr(collector, "refresh", None)):
            self._sources.append(collector)  # type: ignore[arg-type]

    async def exposition(self) -> bytes:
        """The text exposition (Prometheus' format 0.0.4), every source refreshed first."""
        for source in self._sources:
            try:
                await source.refresh()
            except Exception:
                logger.exception("metrics: %s could not refresh", type(source).__name__)
        return await asyncio.to_thread(generate_latest, self.registry)

    async def answer(self, peer: str | None, headers: Any) -> MetricsAnswer:
        """The answer to one ``GET /metrics`` from ``peer`` (the TCP peer's address)."""
        refused = self.access.refusal(peer, headers)
        if refused is not None:
            return _REFUSED[refused]
        return MetricsAnswer(200, await self.exposition(), {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


class StatsCollector(Collector):
    """A process's ``stats`` dict (event name → count since the process started) as one
    counter family, labelled ``event``. The dict is copied in the event loop at each
    scrape (:meth:`refresh`), never read from the exposition's thread.
    """

    def __init__(self, name: str, read: Callable[[], Mapping[str, int] | None]) -> None:
        self.entry = family(name)
        self._read = read
        self._copy: dict[str, int] | None = None

    async def refresh(self) -> None:
        stats = self._read()
        self._copy = dict(stats) if stats is not None else None

    def collect(self) -> Iterable[Metric]:
        if self._copy is None:
            return
        counters = CounterMetricFamily(self.entry.name, self.entry.help, labels=self.entry.labels)
        for event, count in sorted(self._copy.items()):
            counters.add_metric([event], float(count))
        yield counters


class IoMetrics(Collector):
    """The channel's companion process, from the Rasa server that supervises it: whether it
    answers, how often it was restarted, its CPU and memory (read from ``/proc`` by its
    pid) and its pipeline's counters (asked over the private socket).

    ``runtime`` is the channel's :class:`~salon.webhook.companion.IoProcessRuntime`.
    """

    def __init__(self, runtime: Any, *, timeout: float = IO_CALL_TIMEOUT) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self._process = ProcessCollector(namespace="salon_io", pid=self._pid, registry=None)
        self._up = False
        self._stats: dict[str, int] | None = None
        self._told = False

    def _pid(self) -> int | str:
        pid = self.runtime.child_pid
        # No child: a pid /proc cannot have, so the collector reports nothing.
        return int(pid) if pid is not None and self._up else "none"

    async def refresh(self) -> None:
        if not getattr(self.runtime, "ready", False):
            self._up, self._stats = False, None
            return
        try:
            snapshot = await asyncio.wait_for(self.runtime._call("metrics"), self.timeout)
        except Exception as exc:
            # A companion that does not know the call still runs: it is up, without counters.
            self._up = isinstance(exc, RemoteError) and exc.type_name == LookupError.__name__
            if not self._told:
                logger.warning("metrics: the companion process's counters are unavailable (%s)",
                               type(exc).__name__)
                self._told = True
            self._stats = None
            return
        self._up, self._told = True, False
        stats = snapshot.get("stats") if isinstance(snapshot, Mapping) else None
        self._stats = {str(k): int(v) for k, v in stats.items()} if isinstance(stats, Mapping) else None

    def collect(self) -> Iterable[Metric]:
        up = family("salon_io_up")
        yield GaugeMetricFamily(up.name, up.help, value=1 if self._up else 0)
        restarts = family("salon_io_restarts")
        yield CounterMetricFamily(restarts.name, restarts.help, value=float(self.runtime.restarts))
        yield from self._process.collect()
        if self._stats is not None:
            events = family("salon_webhook_events")
            counters = CounterMetricFamily(events.name, events.help, labels=events.labels)
            for event, count in sorted(self._stats.items()):
                counters.add_metric([event], float(count))
            yield counters


async def io_snapshot(runtime: Any) -> dict[str, Any]:
    """The companion process's answer to the Rasa server's ``metrics`` call: its
    pipeline's counters (empty until its pipeline has started). ``runtime`` is the child's
    :class:`~salon.webhook.runtime.WhatsAppRuntime`, or None before ``start``.
    """
    service = getattr(runtime, "service", None)
    stats = getattr(service, "stats", None)
    return {"pid": os.getpid(), "stats": dict(stats) if stats is not None else {}}


class ActionMetrics:
    """The action server's actions: how many ran, by name and outcome, and how long each
    took (``salon_action_duration_seconds``). Names are those the server registered
    (``known``); any other name is counted as ``unknown``.
    """

    OUTCOMES: Final = {200: "success", 400: "rejected", 404: "not_found"}

    def __init__(self, registry: CollectorRegistry, known: Iterable[str]) -> None:
        entry = family("salon_action_duration_seconds")
        self.known = frozenset(known)
        self.histogram = Histogram(entry.name, entry.help, labelnames=entry.labels, registry=registry,
                                   buckets=ACTION_BUCKETS)

    def observe(self, action: str | None, status: int, seconds: float) -> None:
        """One call to the action server's webhook that answered ``status`` after ``seconds``."""
        name = action if action in self.known else "unknown"
        outcome = self.OUTCOMES.get(status, "error")
        self.histogram.labels(name, outcome).observe(max(seconds, 0.0))

