"""The send decision (salon/guard/decision.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from salon.guard.decision import (
    Consent,
    Content,
    ParkAndNudge,
    Refuse,
    SendFreeForm,
    SendTemplate,
    decide,
)
from salon.purposes import SERVICE_REPLY
from salon.templates.registry import TemplateRegistry
from salon.whatsapp.addressing import Recipient
from salon.window.rules import window_state
from salon.window.state import SessionState

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
ALL = Consent(messaging=True, marketing=True)
UTILITY = Consent(messaging=True)
NONE = Consent()
TEXT = Content(text="Your Saddle bag in tan is back in Paris. Shall I hold it until Saturday?",
               buttons=("Yes, please", "No, thank you"))
PARAMS = {"first_name": "Claire", "product_name": "Saddle bag in tan", "boutique": "Paris",
          "event_name": "the Autumn preview", "date": "Thursday 4 June"}


@pytest.fixture(scope="module")
def registry() -> TemplateRegistry:
    return TemplateRegistry.load_default()


def state(last: datetime | None, **kwargs: object) -> SessionState:
    return SessionState("pn", "w:336", wa_id="336", last_inbound_at=last, **kwargs)  # type: ignore[arg-type]


def test_open_window_sends_free_form(registry: TemplateRegistry) -> None:
    decision = decide(state(T0), "restock_alert", TEXT, UTILITY, T0 + H, registry=registry)
    assert isinstance(decision, SendFreeForm)
    assert decision.content is TEXT and decision.kind == "send_free_form"
    assert decision.window.can_send_free_form


def test_inside_the_margin_goes_to_a_template(registry: TemplateRegistry) -> None:
    now = T0 + timedelta(hours=24) - timedelta(minutes=4)
    decision = decide(state(T0), "restock_alert", TEXT, UTILITY, now, registry=registry,
                      params=PARAMS, language="fr_FR")
    assert isinstance(decision, SendTemplate)
    assert decision.window is not None and decision.window.is_open
    assert decision.payload["name"] == "restock_alert"
    assert decision.payload["language"] == {"code": "fr"}
    message = decision.message(Recipient(wa_id="33612345678"))
    assert message["type"] == "template" and message["template"] == decision.payload
    assert message["to"] == "33612345678"
    # a wider margin moves the switch earlier
    early = decide(state(T0), "restock_alert", TEXT, UTILITY, T0 + 22 * H, registry=registry,
                   params=PARAMS, margin=timedelta(hours=3))
    assert isinstance(early, SendTemplate)


def test_closed_window_with_fitting_template(registry: TemplateRegistry) -> None:
    decision = decide(state(T0), "restock_alert", TEXT, UTILITY, T0 + 30 * H, registry=registry,
                      params=PARAMS, language="en")
    assert isinstance(decision, SendTemplate)
    assert decision.choice.category == "UTILITY"


def test_closed_window_without_fitting_template_parks_and_nudges(
    registry: TemplateRegistry,
) -> None:
    note = Content(text="Sophie here: I found the scarf you described in the archive.")
    decision = decide(state(T0), "advisor_followup", note, UTILITY, T0 + 30 * H,
                      registry=registry, params={"first_name": "Claire"}, language="fr_FR")
    assert isinstance(decision, ParkAndNudge)
    assert decision.content is note
    assert decision.nudge_payload is not None
    assert decision.nudge_payload["name"] == "advisor_update_nudge"
    assert decision.nudge_payload["language"] == {"code": "fr"}


def test_one_nudge_for_several_parked_items(registry: TemplateRegistry) -> None:
    nudged = state(T0, nudged_at=T0 + 25 * H, parked_count=1)
    decision = decide(nudged, SERVICE_REPLY, TEXT, UTILITY, T0 + 26 * H, registry=registry,
                      params=PARAMS)
    assert isinstance(decision, ParkAndNudge)
    assert decision.nudge_payload is None and decision.reason == "nudge_already_pending"


def test_service_reply_that_crossed_the_boundary(registry: TemplateRegistry) -> None:
    inside = decide(state(T0), SERVICE_REPLY, TEXT, NONE, T0 + H, registry=registry)
    assert isinstance(inside, SendFreeForm)  # the client wrote: no prior opt-in needed
    late = decide(state(T0), SERVICE_REPLY, TEXT, UTILITY, T0 + 24 * H, registry=registry,
                  params=PARAMS)
    assert isinstance(late, ParkAndNudge) and late.nudge is not None
    no_opt_in = decide(state(T0), SERVICE_REPLY, TEXT, NONE, T0 + 24 * H, registry=registry,
                       params=PARAMS)
    assert isinstance(no_opt_in, ParkAndNudge) and no_opt_in.nudge is None


def test_marketing_needs_marketing_opt_in(registry: TemplateRegistry) -> None:
    invite = Content(text="We would be delighted to see you at the Autumn preview.")
    refused = decide(state(T0), "event_invitation", invite, UTILITY, T0 + H, registry=registry)
    assert isinstance(refused, Refuse) and refused.reason == "no_marketing_opt_in"
    inside = decide(state(T0), "event_invitation", invite, ALL, T0 + H, registry=registry)
    assert isinstance(inside, SendFreeForm)
    outside = decide(state(T0), "event_invitation", invite, ALL, T0 + 30 * H, registry=registry,
                     params=PARAMS)
    assert isinstance(outside, SendTemplate) and outside.choice.category == "MARKETING"
    stopped = Consent(messaging=True, marketing=True, marketing_stopped=True)
    assert decide(state(T0), "event_invitation", invite, stopped, T0 + H,
                  registry=registry).reason == "marketing_stopped"  # type: ignore[union-attr]


def test_marketing_content_without_template_nudges_with_a_marketing_template(
    registry: TemplateRegistry,
) -> None:
    news = Content(text="The Autumn collection has arrived.")
    decision = decide(state(T0), "new_collection", news, ALL, T0 + 30 * H, registry=registry,
                      params={"first_name": "Claire"})
    assert isinstance(decision, ParkAndNudge)
    assert decision.nudge is not None and decision.nudge.category == "MARKETING"


def test_opted_out_is_refused_everything(registry: TemplateRegistry) -> None:
    out = Consent(messaging=True, marketing=True, opted_out=True)
    for purpose in ("restock_alert", "event_invitation", "order_update"):
        decision = decide(state(T0), purpose, TEXT, out, T0 + H, registry=registry, params=PARAMS)
        assert isinstance(decision, Refuse) and decision.reason == "opted_out"


def test_utility_without_messaging_opt_in_is_refused(registry: TemplateRegistry) -> None:
    for now in (T0 + H, T0 + 30 * H):
        decision = decide(state(T0), "restock_alert", TEXT, NONE, now, registry=registry,
                          params=PARAMS)
        assert isinstance(decision, Refuse) and decision.reason == "no_opt_in"


def test_131047_feedback_switches_to_templates(registry: TemplateRegistry) -> None:
    closed = state(T0, window_closed_at=T0 + H, window_closed_code=131047)
    decision = decide(closed, "restock_alert", TEXT, UTILITY, T0 + 2 * H, registry=registry,
                      params=PARAMS)
    assert isinstance(decision, SendTemplate)
    assert decision.window is not None and decision.window.reason == "closed_by_failure"


def test_window_state_or_nothing_as_input(registry: TemplateRegistry) -> None:
    ws = window_state(T0, T0 + H)
    assert isinstance(decide(ws, "restock_alert", TEXT, UTILITY, T0 + H, registry=registry),
                      SendFreeForm)
    never = decide(None, "restock_alert", TEXT, UTILITY, T0, registry=registry, params=PARAMS)
    assert isinstance(never, SendTemplate)


def test_template_only_request_without_fitting_template_is_refused(
    registry: TemplateRegistry,
) -> None:
    decision = decide(state(T0), "restock_alert", None, UTILITY, T0 + 30 * H, registry=registry,
                      params={"first_name": "Claire"})
    assert isinstance(decision, Refuse)
    assert decision.reason == "no_template:missing_params"
    inside = decide(state(T0), "restock_alert", None, UTILITY, T0 + H, registry=registry,
                    params=PARAMS)
    assert isinstance(inside, SendTemplate)  # no free-form content: template even inside


@pytest.mark.parametrize(
    "content",
    [
        Content(),
        Content(text="   "),
        Content(text="x" * 4097),
        Content(text="ok", buttons=("a", "b", "c", "d")),
        Content(text="ok", buttons=("This title is far too long",)),
        Content(text="ok", buttons=("Same", "Same")),
    ],
)
def test_invalid_content_is_refused(registry: TemplateRegistry, content: Content) -> None:
    decision = decide(state(T0), "restock_alert", content, UTILITY, T0 + H, registry=registry)
    assert isinstance(decision, Refuse) and decision.reason == "invalid_content"


def test_unknown_purpose_is_refused(registry: TemplateRegistry) -> None:
    decision = decide(state(T0), "horoscope", TEXT, ALL, T0 + H, registry=registry)
    assert isinstance(decision, Refuse) and decision.reason == "unknown_purpose"


def test_naive_now_is_rejected(registry: TemplateRegistry) -> None:
    with pytest.raises(ValueError):
        decide(state(T0), "restock_alert", TEXT, UTILITY, T0.replace(tzinfo=None),
               registry=registry)


def test_an_opted_out_client_is_still_answered_but_never_knocked_on(registry: TemplateRegistry) -> None:
    """Review M8: opted out (her latest STOP/START is a STOP, whatever else she agreed to),
    she gets the answer to her own message in the open window; an answer that crossed the
    window's end waits for her next message, with no re-engagement template; the rest is
    refused as opted out."""
    out = Consent(messaging=True, marketing=True, opted_out=True)
    inside = decide(state(T0), SERVICE_REPLY, TEXT, out, T0 + H, registry=registry)
    assert isinstance(inside, SendFreeForm)
    late = decide(state(T0), SERVICE_REPLY, TEXT, out, T0 + 24 * H, registry=registry, params=PARAMS)
    assert isinstance(late, ParkAndNudge) and late.nudge is None and late.reason == "opted_out"
    for purpose in ("order_update", "appointment_reminder", "new_collection"):
        refused = decide(state(T0), purpose, TEXT, out, T0 + H, registry=registry, params=PARAMS)
        assert isinstance(refused, Refuse) and refused.reason == "opted_out", purpose
    assert not out.marketing_allowed


def test_a_template_asked_for_by_name_follows_the_clients_stop() -> None:
    from salon.guard.decision import template_refusal

    stopped_then_granted = Consent(messaging=True, marketing=True, opted_out=True)
    # Her latest STOP/START is a STOP: nothing the maison starts reaches her, even when a
    # later book decision granted utility again.
    assert template_refusal("UTILITY", stopped_then_granted, window_open=False) == "opted_out"
    assert template_refusal("MARKETING", stopped_then_granted, window_open=True) == "no_marketing_consent"
    assert template_refusal("UTILITY", stopped_then_granted, window_open=True,
                            purpose="order_update") == "opted_out"
    # Answering her in her open window stays possible, as for a free-form reply.
    assert template_refusal("UTILITY", stopped_then_granted, window_open=True) is None
    assert template_refusal("MARKETING", Consent(messaging=True), window_open=True) == "no_marketing_consent"
    assert template_refusal("UTILITY", Consent(), window_open=False) == "no_opt_in"
    assert template_refusal("UTILITY", Consent(), window_open=True) is None
    assert template_refusal("MARKETING", Consent(messaging=True, marketing=True), window_open=False) is None
