"""The customer service window rules (salon/window/rules.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salon.clock import ManualClock, from_unix
from salon.window.rules import (
    DEFAULT_MARGIN,
    REASON_CLOSED_BY_FAILURE,
    REASON_CLOSING,
    REASON_EXPIRED,
    REASON_NEVER_WROTE,
    REASON_OPEN,
    WindowState,
    canonical_entry_point,
    window_state,
)

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
H24 = timedelta(hours=24)
MS = timedelta(milliseconds=1)
US = timedelta(microseconds=1)
NAIVE = datetime(2026, 6, 1, 10, tzinfo=UTC).replace(tzinfo=None)
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

aware = st.datetimes(
    min_value=datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(2100, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.just(UTC),
)
zones = st.sampled_from(
    [UTC, PARIS, NEW_YORK, ZoneInfo("Asia/Kolkata"), timezone(timedelta(hours=-9, minutes=-30))]
)
offsets = st.timedeltas(min_value=timedelta(hours=-100), max_value=timedelta(hours=100))
margins = st.timedeltas(min_value=timedelta(0), max_value=H24 - US)


# --------------------------------------------------------------------------- boundaries


def test_last_millisecond_is_open_and_24h_is_closed() -> None:
    before = window_state(T0, T0 + H24 - MS)
    assert before.is_open
    assert before.remaining == MS
    assert before.closes_at == T0 + H24
    at = window_state(T0, T0 + H24)
    assert not at.is_open
    assert not at.can_send_free_form
    assert at.remaining == timedelta(0)
    assert at.reason == REASON_EXPIRED
    assert at.closes_at == T0 + H24


def test_23_59_59_999_from_meta_unix_timestamp() -> None:
    last = from_unix("1780300800")  # what Meta sends: a decimal string of seconds
    assert window_state(last, last + timedelta(hours=23, minutes=59, seconds=59.999)).is_open
    assert not window_state(last, last + timedelta(hours=24)).is_open


def test_margin_edges() -> None:
    edge = T0 + H24 - DEFAULT_MARGIN
    just_before = window_state(T0, edge - US)
    assert just_before.can_send_free_form and just_before.reason == REASON_OPEN
    at_edge = window_state(T0, edge)
    assert at_edge.is_open and not at_edge.can_send_free_form
    assert at_edge.reason == REASON_CLOSING
    assert at_edge.free_form_until == edge
    assert at_edge.remaining == DEFAULT_MARGIN
    assert window_state(T0, edge, margin=timedelta(0)).can_send_free_form
    wide = timedelta(hours=2)
    assert not window_state(T0, T0 + timedelta(hours=22), margin=wide).can_send_free_form
    assert window_state(T0, T0 + timedelta(hours=22) - US, margin=wide).can_send_free_form


@pytest.mark.parametrize("margin", [timedelta(seconds=-1), H24, timedelta(days=3)])
def test_margin_out_of_range(margin: timedelta) -> None:
    with pytest.raises(ValueError):
        window_state(T0, T0, margin=margin)


def test_never_wrote_is_closed() -> None:
    state = window_state(None, T0)
    assert not state.is_open and not state.can_send_free_form
    assert state.closes_at is None and state.free_form_until is None
    assert state.remaining == timedelta(0)
    assert state.reason == REASON_NEVER_WROTE
    assert state.free_entry_point_until is None


def test_before_first_message_in_our_clock_is_still_open() -> None:
    # Meta's timestamp slightly ahead of our clock (skew): open, the full window remains.
    state = window_state(T0 + timedelta(seconds=3), T0)
    assert state.is_open
    assert state.remaining == H24 + timedelta(seconds=3)


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"last_inbound_at": NAIVE, "now": T0},
        {"last_inbound_at": T0, "now": NAIVE},
        {"last_inbound_at": None, "now": NAIVE},
        {"last_inbound_at": T0, "now": T0, "first_reply_at": NAIVE},
        {"last_inbound_at": T0, "now": T0, "referral_at": NAIVE},
        {"last_inbound_at": T0, "now": T0, "closed_by_failure_at": NAIVE},
        {"last_inbound_at": None, "now": T0, "closed_by_failure_at": NAIVE},
    ],
)
def test_naive_datetimes_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        window_state(**kwargs)  # type: ignore[arg-type]


def test_non_datetime_raises_type_error() -> None:
    with pytest.raises(TypeError):
        window_state(1780300800, T0)  # type: ignore[arg-type]


def test_unknown_entry_point_raises() -> None:
    with pytest.raises(ValueError, match="entry point"):
        window_state(T0, T0, entry_point="billboard")
    assert canonical_entry_point("ctwa") == "ctwa_ad"
    assert canonical_entry_point("referral") == "ctwa_ad"
    assert canonical_entry_point("fb_page_cta") == "page_cta"


def test_results_are_utc_and_immutable() -> None:
    state = window_state(T0.astimezone(PARIS), T0.astimezone(NEW_YORK) + timedelta(hours=1))
    assert state.closes_at is not None and state.closes_at.tzinfo is UTC
    assert state.now.tzinfo is UTC
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.reason = REASON_EXPIRED  # type: ignore[misc]
    # A derived attribute cannot be set either (Python 3.10's frozen slotted dataclasses
    # raise TypeError for a name that is not a field, later versions AttributeError).
    with pytest.raises((AttributeError, TypeError)):
        state.is_open = False  # type: ignore[misc]
    assert state.is_open and state.reason == REASON_OPEN
    assert state == window_state(T0, T0 + timedelta(hours=1))
    assert hash(state) == hash(window_state(T0, T0 + timedelta(hours=1)))
    assert state.as_dict()["remaining"] == 23 * 3600


def test_clock_drives_the_window() -> None:
    clock = ManualClock(T0)
    assert window_state(T0, clock.now()).can_send_free_form
    clock.advance(H24 - DEFAULT_MARGIN)
    assert not window_state(T0, clock.now()).can_send_free_form
    clock.advance(DEFAULT_MARGIN)
    assert not window_state(T0, clock.now()).is_open


# --------------------------------------------------------------------------- DST


def test_dst_spring_forward_does_not_shorten_the_window() -> None:
    # Paris moves to CEST on Sunday 29 March 2026: wall-clock arithmetic would close the
    # window an hour early.
    last = datetime(2026, 3, 28, 12, 0, tzinfo=PARIS)  # 11:00 UTC
    now = datetime(2026, 3, 29, 12, 30, tzinfo=PARIS)  # 10:30 UTC, 23.5 h later
    state = window_state(last, now)
    assert state.is_open
    assert state.remaining == timedelta(minutes=30)
    assert state.closes_at == datetime(2026, 3, 29, 11, 0, tzinfo=UTC)
    assert not window_state(last, datetime(2026, 3, 29, 13, 0, tzinfo=PARIS)).is_open


def test_dst_fall_back_does_not_lengthen_the_window() -> None:
    last = datetime(2026, 10, 24, 12, 0, tzinfo=PARIS)  # 10:00 UTC (CEST)
    now = datetime(2026, 10, 25, 11, 0, tzinfo=PARIS)  # 10:00 UTC (CET): exactly 24 h
    assert not window_state(last, now).is_open
    assert window_state(last, now - US).is_open


# --------------------------------------------------------------------------- 131047


def test_131047_closes_the_window_despite_our_clock() -> None:
    failed = T0 + timedelta(hours=3)
    state = window_state(T0, T0 + timedelta(hours=4), closed_by_failure_at=failed)
    assert not state.is_open and not state.can_send_free_form
    assert state.reason == REASON_CLOSED_BY_FAILURE
    assert state.closes_at == failed
    assert state.remaining == timedelta(0)
    # even if our clock is behind the failure's timestamp
    assert not window_state(T0, T0 + timedelta(hours=1), closed_by_failure_at=failed).is_open


def test_later_inbound_reopens_after_131047() -> None:
    failed = T0 + timedelta(hours=3)
    later = failed + timedelta(seconds=1)
    state = window_state(later, later + timedelta(minutes=1), closed_by_failure_at=failed)
    assert state.can_send_free_form
    assert state.reason == REASON_OPEN
    # same second as the failure is not "later"
    assert not window_state(failed, failed, closed_by_failure_at=failed).is_open


def test_stale_131047_before_last_inbound_is_ignored() -> None:
    state = window_state(T0, T0 + timedelta(hours=1), closed_by_failure_at=T0 - US)
    assert state.can_send_free_form


def test_131047_after_natural_close_keeps_natural_close() -> None:
    failed = T0 + timedelta(hours=30)
    state = window_state(T0, failed, closed_by_failure_at=failed)
    assert state.closes_at == T0 + H24
    assert state.reason == REASON_CLOSED_BY_FAILURE


# --------------------------------------------------------------------------- FEP


def test_fep_starts_at_our_first_reply_within_24h() -> None:
    reply = T0 + timedelta(minutes=2)
    state = window_state(T0, T0 + timedelta(hours=1), entry_point="ctwa_ad", first_reply_at=reply)
    assert state.free_entry_point_until == reply + timedelta(hours=72)
    assert state.fep_started and state.fep_active


def test_fep_persists_after_the_24h_window_but_no_free_form() -> None:
    reply = T0 + timedelta(minutes=2)
    state = window_state(T0, T0 + timedelta(hours=50), entry_point="ctwa", first_reply_at=reply)
    assert not state.is_open and not state.can_send_free_form
    assert state.fep_active
    gone = window_state(T0, reply + timedelta(hours=72), entry_point="ctwa", first_reply_at=reply)
    assert not gone.fep_active
    assert gone.free_entry_point_until == reply + timedelta(hours=72)


def test_reply_after_24h_opens_no_fep() -> None:
    state = window_state(
        T0, T0 + timedelta(hours=30), entry_point="ctwa_ad", first_reply_at=T0 + H24
    )
    assert state.free_entry_point_until is None
    assert not state.fep_active


def test_fep_before_any_reply_is_the_earliest_possible_end() -> None:
    state = window_state(T0, T0 + timedelta(hours=1), entry_point="ctwa_ad")
    assert state.free_entry_point_until == T0 + timedelta(hours=72)
    assert not state.fep_started
    # no reply within 24 h: no FEP
    assert window_state(T0, T0 + H24, entry_point="ctwa_ad").free_entry_point_until is None


def test_fep_counts_from_the_referral_not_later_messages() -> None:
    later = T0 + timedelta(hours=10)
    reply = T0 + timedelta(minutes=1)
    state = window_state(
        later, later, entry_point="ctwa_ad", referral_at=T0, first_reply_at=reply
    )
    assert state.free_entry_point_until == reply + timedelta(hours=72)


def test_organic_has_no_fep() -> None:
    state = window_state(T0, T0, first_reply_at=T0 + timedelta(minutes=1))
    assert state.free_entry_point_until is None
    assert not state.fep_active


def test_page_cta_opens_fep_too() -> None:
    reply = T0 + timedelta(seconds=5)
    assert window_state(
        T0, T0, entry_point="page_cta", first_reply_at=reply
    ).free_entry_point_until == reply + timedelta(hours=72)


# --------------------------------------------------------------------------- properties


@given(last=aware, delta=offsets, margin=margins)
def test_property_definition(last: datetime, delta: timedelta, margin: timedelta) -> None:
    now = last + delta
    state = window_state(last, now, margin)
    assert state.is_open == (now < last + H24)
    assert state.can_send_free_form == (now < last + H24 - margin)
    assert state.closes_at == last + H24
    assert state.remaining == max(timedelta(0), last + H24 - now)
    if state.can_send_free_form:
        assert state.is_open
    if now >= last:
        assert state.remaining <= H24


@given(last=aware, delta=offsets, margin=margins, zone_a=zones, zone_b=zones)
def test_property_time_zones_are_irrelevant(
    last: datetime, delta: timedelta, margin: timedelta, zone_a: object, zone_b: object
) -> None:
    now = last + delta
    base = window_state(last, now, margin)
    moved = window_state(last.astimezone(zone_a), now.astimezone(zone_b), margin)  # type: ignore[arg-type]
    assert moved == base


@given(a=aware, b=aware, delta=offsets)
def test_property_out_of_order_inbound_max_wins(a: datetime, b: datetime, delta: timedelta) -> None:
    # Whatever order two inbound timestamps arrive in, the window is the later one's,
    # and a later inbound never shortens the window.
    now = max(a, b) + delta
    latest = window_state(max(a, b), now)
    assert window_state(max(b, a), now) == latest
    if window_state(min(a, b), now).is_open:
        assert latest.is_open
    assert latest.remaining >= window_state(min(a, b), now).remaining


@given(last=aware, fail=offsets, delta=offsets)
def test_property_failure_after_last_inbound_always_closes(
    last: datetime, fail: timedelta, delta: timedelta
) -> None:
    failed = last + abs(fail)
    state = window_state(last, last + delta, closed_by_failure_at=failed)
    assert not state.is_open and not state.can_send_free_form
    assert state.remaining == timedelta(0)
    assert state.closes_at == min(failed, last + H24)


@given(referral=aware, reply=offsets, delta=offsets)
def test_property_fep(referral: datetime, reply: timedelta, delta: timedelta) -> None:
    replied = referral + reply
    now = referral + delta
    state = window_state(referral, now, entry_point="ctwa_ad", first_reply_at=replied)
    if timedelta(0) <= reply < H24:
        assert state.free_entry_point_until == replied + timedelta(hours=72)
        assert state.fep_active == (now < replied + timedelta(hours=72))
    else:
        assert state.free_entry_point_until is None
    # the FEP never changes what may be sent
    assert state.can_send_free_form == window_state(referral, now).can_send_free_form


def test_window_state_is_a_value_object() -> None:
    state = window_state(T0, T0)
    assert isinstance(state, WindowState)
    assert not hasattr(state, "__dict__")
