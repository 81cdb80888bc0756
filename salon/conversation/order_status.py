"""Order answers in the maison's voice, composed only from the order's own data.

Dates are said as the client reads them ("Wednesday 25 November"); a tracking link is
given when the carrier has one; a delay is said plainly with its reason. The record is
read against the client's today: an order still on its way after its promised date is
late, and said to be, with an apology and the next step. Nothing is promised that the
order record does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from salon.integrations.orders import OrderFacts

__all__ = ["LATE_ORDER_BUTTON", "is_late", "order_answer"]

LATE_ORDER_BUTTON = {"title": "Ask my advisor", "payload": "/talk_to_advisor"}
"""Offered under a late order's answer: the advisor takes it from there."""


def _day(value: date | datetime) -> str:
    return f"{value:%A} {value.day} {value:%B}"


def _items(items: Sequence[str]) -> str:
    if not items:
        return "Your order"
    if len(items) == 1:
        return f"Your {items[0]}"
    return f"Your {', '.join(items[:-1])} and {items[-1]}"


def _tracking(facts: OrderFacts) -> str:
    if facts.tracking_url:
        return f" You can follow it here: {facts.tracking_url}"
    if facts.tracking_number and facts.carrier:
        return f" The {facts.carrier} tracking number is {facts.tracking_number}."
    return ""


_ON_ITS_WAY = frozenset({"placed", "confirmed", "in_preparation", "shipped", "out_for_delivery"})


def _late(facts: OrderFacts, subject: str, number: str) -> str:
    """An order on its way past its promised date: said plainly, with the next step."""
    assert facts.eta is not None
    news = who = ""
    if facts.status in ("shipped", "out_for_delivery"):
        who = f" with {facts.carrier}" if facts.carrier else ""
        when = f" on {_day(facts.shipped_at)}" if facts.shipped_at else ""
        news = f" It left us{when}{who}.{_tracking(facts)}"
    return (f"{subject} {number} was due on {_day(facts.eta)} and has not reached you yet. "
            f"I am sorry.{news} Your client advisor can look into it{who} for you.")


def is_late(facts: OrderFacts, today: date) -> bool:
    """Whether the order is still on its way after its promised date (``today`` is the client's)."""
    return facts.status in _ON_ITS_WAY and facts.eta is not None and facts.eta < today


def order_answer(facts: OrderFacts, *, today: date) -> str:
    """One short message on where the order stands on ``today`` (the client's date), from
    its record only.
    """
    subject = _items(facts.items)
    number = f"(order {facts.number})"
    if is_late(facts, today):
        return _late(facts, subject, number)
    eta = f", expected on {_day(facts.eta)}" if facts.eta else ""
    status = facts.status
    if status in ("placed", "confirmed"):
        return f"{subject} {number} is confirmed and will be prepared shortly{eta}."
    if status == "in_preparation":
        where = f" at {facts.shipped_from}" if facts.shipped_from else ""
        return f"{subject} {number} is being prepared{where}{eta}."
    if status in ("shipped", "out_for_delivery"):
        how = f" with {facts.carrier}" if facts.carrier else ""
        when = f" on {_day(facts.shipped_at)}" if facts.shipped_at else ""
        leg = "is out for delivery today" if status == "out_for_delivery" else f"left us{when}{how}"
        to = f" to {facts.delivery_city}" if facts.delivery_city and status == "shipped" else ""
        return f"{subject} {number} {leg}{to}{eta}.{_tracking(facts)}"
    if status == "delivered":
        when = f" on {_day(facts.delivered_at)}" if facts.delivered_at else ""
        return (f"{subject} {number} was delivered{when}. If anything is not as it should be, "
                "I will ask your client advisor to look after it.")
    if status == "delayed":
        reason = f" {facts.delay_reason.rstrip('.')}." if facts.delay_reason else ""
        return (f"{subject} {number} is delayed, and I am sorry for it.{reason}"
                f"{(' It is now expected on ' + _day(facts.eta) + '.') if facts.eta else ''}"
                " Your client advisor is following it closely.")
    if status == "cancelled":
        return f"Order {facts.number} was cancelled. Your client advisor can tell you more if you wish."
    if status == "returned":
        return f"Order {facts.number} has been returned to us. Your client advisor will confirm the refund with you."
    return f"Order {facts.number} is {status.replace('_', ' ')}. Your client advisor can tell you more."
