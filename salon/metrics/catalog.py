"""Every metric family Salon exports, in one list: its name, type, labels and meaning.

The exposition, the Grafana dashboard (``deploy/grafana/salon.json``) and the tests read
this list, so a family added, renamed or dropped here is added, renamed or dropped
everywhere at once: the dashboard test fails on a panel that queries a name nobody exports
and on a business family no panel shows.

Where each family comes from (``source``):

- ``process``: every process (prometheus-client's process collector, and Salon's own
  ``salon_process_info``);
- ``io``: the channel's companion process, seen from the Rasa server that supervises it;
- ``pipeline``: the webhook pipeline's counters, wherever the pipeline runs (the companion
  process by default, the Rasa server with ``io_process: false``);
- ``worker``: an outbound worker's counters;
- ``actions``: the action server's actions;
- ``business``: read from the database at scrape time by the one process configured to
  (``SALON_METRICS_BUSINESS``, the Rasa server by default).

Labels are bounded: every label value is one of a fixed list (or a code of the rate card,
a purpose of :mod:`salon.purposes`, a tier of the client book), never a client's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTION_BUCKETS",
    "BUSINESS_FAMILIES",
    "FAMILIES",
    "HANDOFF_BUCKETS",
    "INBOX_WINDOWS",
    "RECORD_WINDOWS",
    "Family",
    "exported_names",
    "family",
    "sample_names",
]

RECORD_WINDOWS: Final = ("1h", "24h", "7d", "30d")
"""The trailing windows (the ``window`` label) of families read from records Salon keeps a
year (``wa_outbound``, ``wa_pricing``, ``llm_audit``)."""

INBOX_WINDOWS: Final = ("1h", "24h", "7d")
"""The windows of families read from ``wa_inbox``, whose handled rows are pruned after 8 days."""

HANDOFF_BUCKETS: Final = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0)
"""Upper bounds (seconds) of the handoff wait histogram: 1 min to 3 days."""

ACTION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the action latency histogram."""


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: ``name`` as written in the exposition's ``# TYPE`` line, but for
    counters, which prometheus-client writes with ``_total`` (``sample_names`` has them).
    """

    name: str
    kind: str
    """``gauge``, ``counter``, ``histogram`` or ``gaugehistogram``."""
    labels: tuple[str, ...]
    source: str
    help: str


def _f(name: str, kind: str, labels: tuple[str, ...], source: str, help: str) -> Family:
    return Family(name, kind, labels, source, help)


FAMILIES: Final[tuple[Family, ...]] = (
    # ------------------------------------------------------------------ every process
    _f("process_cpu_seconds", "counter", (), "process", "CPU time of the process (user and system)."),
    _f("process_resident_memory_bytes", "gauge", (), "process", "Resident memory of the process."),
    _f("process_virtual_memory_bytes", "gauge", (), "process", "Virtual memory of the process."),
    _f("process_start_time_seconds", "gauge", (), "process", "When the process started (Unix time)."),
    _f("process_open_fds", "gauge", (), "process", "Open file descriptors."),
    _f("process_max_fds", "gauge", (), "process", "The file descriptor limit."),
    _f("salon_process_info", "gauge", ("process", "version"), "process",
       "Always 1: which Salon process this is (rasa, actions, worker, gdpr-api, outbound-api) and its version."),
    # ------------------------------------------------------------------ the companion process
    _f("salon_io_up", "gauge", (), "io",
       "1 while the channel's companion process answers the Rasa server, else 0."),
    _f("salon_io_restarts", "counter", (), "io", "Times the companion process was started again after dying."),
    _f("salon_io_process_cpu_seconds", "counter", (), "io", "CPU time of the companion process."),
    _f("salon_io_process_resident_memory_bytes", "gauge", (), "io", "Resident memory of the companion process."),
    _f("salon_io_process_virtual_memory_bytes", "gauge", (), "io", "Virtual memory of the companion process."),
    _f("salon_io_process_start_time_seconds", "gauge", (), "io", "When the companion process started."),
    _f("salon_io_process_open_fds", "gauge", (), "io", "Open file descriptors of the companion process."),
    _f("salon_io_process_max_fds", "gauge", (), "io", "The companion process's file descriptor limit."),
    # ------------------------------------------------------------------ pipeline, worker, actions
    _f("salon_webhook_events", "counter", ("event",), "pipeline",
       "The webhook pipeline's counters since its process started: posts, messages, duplicates, statuses, "
       "rejected, turns, turn_errors, unavailable, commits, foreign, abandoned, taken_over, echoes, "
       "held_for_order."),
    _f("salon_outbound_worker_events", "counter", ("event",), "worker",
       "An outbound worker's counters since it started: claimed, finished, retried, deferred, recovered, "
       "lost_lease."),
    _f("salon_action_duration_seconds", "histogram", ("action", "outcome"), "actions",
       "Custom actions run, by action and outcome (success, rejected, not_found, error), with their latency."),
    # ------------------------------------------------------------------ business (database)
    _f("salon_business_metrics_up", "gauge", (), "business",
       "1 when the last read of the business metrics from the database succeeded, else 0."),
    _f("salon_business_metrics_refresh_seconds", "gauge", (), "business",
       "How long the last read of the business metrics took."),
    _f("salon_messages", "gauge", ("window", "direction", "type", "category", "outcome"), "business",
       "Messages in the trailing window: inbound (the client's, by WhatsApp type and inbox state), echo (an "
       "advisor's from the phone) and outbound (by kind, billing category and latest status)."),
    _f("salon_windows", "gauge", ("state",), "business",
       "Clients' customer service windows now: open (more than 2 h left), closing (2 h or less), closed."),
    _f("salon_send_decisions", "gauge", ("window", "decision"), "business",
       "Sends decided by the send-time guard in the trailing window: free_form, template, park, refused."),
    _f("salon_fallback_ratio", "gauge", ("window",), "business",
       "Templates and parks per decided send (free-form, template or park) in the trailing window."),
    _f("salon_error_131047", "gauge", ("window",), "business",
       "Sends Meta refused with 131047 (the window had closed) in the trailing window; the goal is 0."),
    _f("salon_nudges", "gauge", ("outcome",), "business",
       "Re-engagement nudges sent in the last 7 days: replied (the client wrote within 24 h), waiting "
       "(younger than 24 h, no answer yet), unanswered."),
    _f("salon_nudge_conversion_ratio", "gauge", (), "business",
       "Nudges sent 1 to 7 days ago that the client answered within 24 h, per nudge sent then."),
    _f("salon_client_days", "gauge", ("resolution",), "business",
       "Client-days (a client who wrote on a UTC day) of the last 7 days: assistant (no handoff that day) "
       "or advisor."),
    _f("salon_containment_ratio", "gauge", (), "business",
       "Client-days of the last 7 days resolved without a person, per client-day."),
    _f("salon_handoff_wait_seconds", "gaugehistogram", ("until",), "business",
       "Handoffs opened in the last 7 days, by how long they waited until an advisor took them (taken) or "
       "first wrote to the client (first_reply)."),
    _f("salon_handoffs_waiting", "gauge", (), "business",
       "Open handoffs no advisor has taken or answered yet."),
    _f("salon_handoff_oldest_wait_seconds", "gauge", (), "business",
       "How long the oldest of the waiting handoffs has waited (0 when none waits)."),
    _f("salon_whatsapp_estimated_cost", "gauge", ("window", "category", "market", "purpose", "tier", "currency"),
       "business",
       "What the sends of the trailing window cost by the guard's estimate, in the rate card's currency."),
    _f("salon_whatsapp_billed_cost", "gauge", ("window", "category", "market", "purpose", "tier", "currency"),
       "business",
       "What Meta bills for the messages it priced in the trailing window (billable and delivered), in "
       "the rate card's currency."),
    _f("salon_whatsapp_priced_messages", "gauge", ("window", "category", "pricing_type", "delivered"), "business",
       "Messages Meta priced in the trailing window, by Meta's category and pricing type."),
    _f("salon_whatsapp_pricing_mismatches", "gauge", ("window", "reason"), "business",
       "Messages Meta priced otherwise than the guard estimated in the trailing window, by how."),
    _f("salon_llm_turns", "gauge", ("window", "mode", "verdict"), "business",
       "Styling fallback turns in the trailing window, by mode and guardrail verdict."),
    _f("salon_outbound_queued", "gauge", ("due",), "business",
       "Outbound requests waiting in the queue: due now, or later."),
    _f("salon_outbound_oldest_due_age_seconds", "gauge", (), "business",
       "How long the oldest due outbound request has been due (0 when none is)."),
)

BUSINESS_FAMILIES: Final = tuple(f for f in FAMILIES if f.source == "business")

_BY_NAME: Final = {f.name: f for f in FAMILIES}


def family(name: str) -> Family:
    """The family called ``name`` (``KeyError`` for a name Salon does not export)."""
    return _BY_NAME[name]


def sample_names(entry: Family) -> tuple[str, ...]:
    """The names a family's samples carry in the text exposition (what PromQL queries)."""
    if entry.kind == "counter":
        return (f"{entry.name}_total",)
    if entry.kind == "histogram":
        return (f"{entry.name}_bucket", f"{entry.name}_count", f"{entry.name}_sum")
    if entry.kind == "gaugehistogram":
        return (f"{entry.name}_bucket", f"{entry.name}_gcount", f"{entry.name}_gsum")
    return (entry.name,)


def exported_names() -> frozenset[str]:
    """Every sample name any Salon process may expose."""
    return frozenset(name for entry in FAMILIES for name in sample_names(entry))
