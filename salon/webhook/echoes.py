"""Coexistence: the maison's WhatsApp number also runs the WhatsApp Business app, and
what an advisor types there reaches Salon as ``smb_message_echoes`` webhooks
(:class:`salon.whatsapp.updates.MessageEcho`).

An echo is the maison speaking, not the client: it is kept in her conversation as a
message from her advisor on the phone, and it neither opens nor extends her customer
service window. While the advisor writes from the phone the assistant steps back: the
conversation is paused for :data:`PAUSE_ENV` minutes (default
:data:`DEFAULT_PAUSE_MINUTES`, ``0``: never) from the moment Salon records the advisor's
latest message. The client's messages meanwhile are recorded, unanswered; the first one
she sends after that time lifts the pause and is answered. A pause that came from a
handoff (the assistant handed her to her advisor) is never lifted by this timer, and an
echo does not add a pause of its own on top of it.

This module holds the rules, on a plain view of the conversation's events; the channel
(``connectors/whatsapp.py``) applies them to Rasa's tracker.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from salon.clock import from_unix

__all__ = [
    "ADVISOR_ON_PHONE",
    "DEFAULT_PAUSE_MINUTES",
    "ECHO_KEY",
    "PAUSE_ENV",
    "PAUSE_KEY",
    "EchoConfigError",
    "EchoPause",
    "PauseWatch",
    "TrackerEvent",
    "echo_event_metadata",
    "is_echo_event",
    "pause_from_env",
    "pause_metadata",
    "read_pause",
    "resume_metadata",
]

PAUSE_ENV: Final = "SALON_ECHO_PAUSE_MINUTES"
DEFAULT_PAUSE_MINUTES: Final = 30
MAX_PAUSE_MINUTES: Final = 7 * 24 * 60
ADVISOR_ON_PHONE: Final = "phone"
"""Who wrote an echo, as the advisor API's transcript names the advisor."""
ECHO_KEY: Final = "echo"
PAUSE_KEY: Final = "echo_pause"
"""Marks the pause (and the resume) that echoes start (and end) in the conversation."""
WATCH_CAPACITY: Final = 20_000

PauseKind = Literal["none", "echo", "handoff"]
EventKind = Literal["paused", "resumed", "session", "echo"]


class EchoConfigError(ValueError):
    """``SALON_ECHO_PAUSE_MINUTES`` is not a whole number of minutes."""


def pause_from_env(environ: Mapping[str, str] | None = None) -> timedelta:
    """How long an advisor's message from the phone pauses the assistant (zero: never)."""
    raw = (os.environ if environ is None else environ).get(PAUSE_ENV, "").strip()
    if not raw:
        return timedelta(minutes=DEFAULT_PAUSE_MINUTES)
    if not raw.isdigit() or int(raw) > MAX_PAUSE_MINUTES:
        raise EchoConfigError(f"{PAUSE_ENV} must be a whole number of minutes from 0 to "
                              f"{MAX_PAUSE_MINUTES}, not {raw[:20]!r}")
    return timedelta(minutes=int(raw))


def echo_event_metadata(item_metadata: Mapping[str, Any], recorded_at: datetime) -> dict[str, Any]:
    """The metadata of an echo's message in the conversation: written by an advisor on
    the phone, with Meta's id and time, and when Salon recorded it (the pause runs from
    then).
    """
    out: dict[str, Any] = {
        "advisor": ADVISOR_ON_PHONE,
        ECHO_KEY: True,
        "wamid": item_metadata.get("wamid"),
        "type": item_metadata.get("type"),
        "sent_at": item_metadata.get("timestamp"),
        "recorded_at": recorded_at.timestamp(),
    }
    attachment = item_metadata.get("attachment")
    if isinstance(attachment, Mapping):
        out["attachment"] = dict(attachment)
    return out


def pause_metadata(wamid: str) -> dict[str, Any]:
    """The metadata of the pause an echo starts."""
    return {PAUSE_KEY: True, "wamid": wamid}


def resume_metadata() -> dict[str, Any]:
    """The metadata of the resume that ends an echo's pause."""
    return {PAUSE_KEY: "expired"}


def is_echo_event(metadata: Mapping[str, Any] | None) -> bool:
    """Whether a bot message's metadata marks an advisor's message from the phone."""
    return bool(metadata) and (metadata or {}).get(ECHO_KEY) is True


@dataclass(frozen=True, slots=True)
class TrackerEvent:
    """What the pause rules read of one event of the conversation."""

    kind: EventKind
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EchoPause:
    """Who holds the conversation now, as far as echoes are concerned."""

    kind: PauseKind
    """``echo``: paused by the advisor's messages from the phone; ``handoff``: paused by
    anything else (a handoff: never lifted by the timer); ``none``: the assistant answers."""
    last_echo_at: datetime | None = None
    """When Salon recorded the latest echo of the conversation."""
    never_started: bool = False
    """The conversation began with an echo: the assistant has not started a session
    for her yet (Rasa does so by itself only for an empty conversation)."""
    wamids: frozenset[str] = frozenset()
    """The echoes the conversation holds (a redelivered one is not recorded twice)."""

    def until(self, pause: timedelta) -> datetime | None:
        """When an echo pause ends (None: not an echo pause)."""
        if self.kind != "echo" or self.last_echo_at is None:
            return None
        return self.last_echo_at + pause

    def lifted_for(self, message_at: datetime, pause: timedelta) -> bool:
        """Whether a client's message sent at ``message_at`` comes after an echo pause."""
        until = self.until(pause)
        return until is not None and message_at >= until


def read_pause(events: Iterable[TrackerEvent], *, paused: bool) -> EchoPause:
    """The pause state of a conversation from its events (oldest first) and whether the
    assistant is paused now (Rasa's own reading of the same events).
    """
    kind: PauseKind = "none"
    last_echo: datetime | None = None
    started = echoed = False
    wamids: set[str] = set()
    for event in events:
        meta = event.metadata or {}
        if event.kind == "session":
            kind, started = "none", True
        elif event.kind == "resumed":
            kind = "none"
        elif event.kind == "paused":
            # A handoff's pause wins over an echo's: only the advisor hands it back.
            kind = "handoff" if kind == "handoff" or meta.get(PAUSE_KEY) is not True else "echo"
        elif event.kind == "echo":
            echoed = True
            recorded = _seconds(meta.get("recorded_at"))
            if recorded is not None and (last_echo is None or recorded > last_echo):
                last_echo = recorded
            if isinstance(meta.get("wamid"), str):
                wamids.add(meta["wamid"])
    if not paused:
        kind = "none"
    elif kind == "none":
        kind = "handoff"  # paused by something these events do not explain: not ours to lift
    return EchoPause(kind, last_echo, echoed and not started, frozenset(wamids))


def _seconds(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return from_unix(float(value))
    except (OverflowError, OSError, ValueError):
        return None


class PauseWatch:
    """What the channel last saw of each conversation's pause, so that the conversation
    is read before a client's turn only when an echo pause may have to be lifted (or a
    conversation begun by an echo needs its session started).

    A sighting of a conversation with no echo pause stays good for the pause's length:
    a pause set since (by another server) lasts that long from when it was recorded, so
    it cannot have ended before. Sightings come from every read of the conversation
    (before and after each turn, and when an echo is recorded).

    The channel notes sightings in the assistant's loop and asks in the server's: a
    question is one read of an ordered dict, whole under the interpreter lock.
    """

    def __init__(self, pause: timedelta, capacity: int = WATCH_CAPACITY) -> None:
        self.pause = pause
        self.capacity = capacity
        self._seen: OrderedDict[str, tuple[datetime, EchoPause]] = OrderedDict()

    def saw(self, conversation_id: str, view: EchoPause | None, at: datetime) -> None:
        """Note what a read of the conversation found (None: no conversation yet, which
        is never taken as known).
        """
        if view is None:
            self._seen.pop(conversation_id, None)
            return
        self._seen[conversation_id] = (at, view)
        self._seen.move_to_end(conversation_id)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def must_look(self, conversation_id: str, message_at: datetime, now: datetime) -> bool:
        """Whether the conversation must be read before the client's message sent at
        ``message_at`` is handed to the assistant.
        """
        seen = self._seen.get(conversation_id)
        if seen is None:
            return True
        at, view = seen
        if view.never_started:
            return True
        if view.kind == "echo":
            return view.lifted_for(message_at, self.pause)
        if self.pause <= timedelta(0):
            return False  # no echo pauses are made: what was seen stays true
        return max(message_at, now) >= at + self.pause
