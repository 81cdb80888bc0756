"""One turn's responses merged into fewer WhatsApp messages (salon/whatsapp/merging.py):
what merges, what never does, and that a merged message renders as one."""

from __future__ import annotations

import random
from typing import Any

import pytest
from rasa.core.actions.action import create_bot_utterance

from salon.whatsapp.merging import (
    MAX_UTTER_ACTION,
    MergeConfig,
    MergeConfigError,
    joined_message,
    merge_messages,
    merge_responses,
    superseded,
)
from salon.whatsapp.messages import MAX_INTERACTIVE_BODY, MAX_TEXT, render_response

YES_NO = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
BOUTIQUES = [{"title": city, "payload": f'/inform{{"boutique": "{city.lower()}"}}'}
             for city in ("Paris", "London", "Milan", "Geneva")]


def said(text: str | None = None, **response: Any) -> dict[str, Any]:
    """A response as Rasa hands it to the output channel (``BotUttered.message()``)."""
    return create_bot_utterance({"text": text, **response}).message()


def bodies(responses: list[Any]) -> list[str]:
    return [r["text"] for r in responses]


def test_two_texts_become_one_message_named_after_both() -> None:
    first = said("Of course, Claire.", utter_action="utter_of_course")
    second = said("Your order SOL-104233 left Paris this morning.", utter_action="utter_order_status")
    [merged] = merge_responses([first, second])
    assert merged["text"] == "Of course, Claire.\n\nYour order SOL-104233 left Paris this morning."
    assert merged["utter_action"] == "utter_of_course+utter_order_status"
    [out] = render_response(merged)
    assert out.message == {"type": "text", "text": {"body": merged["text"]}}
    assert out.utter_action == "utter_of_course+utter_order_status" and out.purpose == "service_reply"


def test_text_then_text_with_buttons_carries_the_buttons_at_the_end() -> None:
    responses = [said("Happy to book a visit.", utter_action="utter_happy_to_book"),
                 said("Which boutique?", buttons=BOUTIQUES[:3], utter_action="utter_ask_boutique")]
    [merged] = merge_responses(responses)
    assert merged["buttons"] == BOUTIQUES[:3]
    [out] = render_response(merged)
    interactive = out.message["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"]["text"] == "Happy to book a visit.\n\nWhich boutique?"
    assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == ["Paris", "London", "Milan"]


def test_three_parts_merge_in_order() -> None:
    responses = [said("Bonjour Claire.", utter_action="utter_greet"),
                 said("Votre rendez-vous est confirmé.", utter_action="utter_booked"),
                 said("Puis-je faire autre chose ?", buttons=YES_NO, utter_action="utter_anything_else")]
    [merged] = merge_responses(responses)
    assert merged["text"] == ("Bonjour Claire.\n\nVotre rendez-vous est confirmé.\n\n"
                              "Puis-je faire autre chose ?")
    assert merged["utter_action"] == "utter_greet+utter_booked+utter_anything_else"
    assert len(render_response(merged)) == 1


def test_a_lone_response_is_returned_as_it_came() -> None:
    only = said("Good day, Claire.", utter_action="utter_greet")
    assert merge_responses([only])[0] is only
    assert merge_responses([]) == []


@pytest.mark.parametrize("other", [
    said(None, custom={"wa_template": "order_update", "wa_params": {"order": "SOL-104233"}}),
    said(None, image="https://maison-solenne.example/aurore-tote.jpg"),
    said("The Aurore tote", image="https://maison-solenne.example/aurore-tote.jpg"),
    said(None, attachment="https://maison-solenne.example/care-guide.pdf"),
    said(None, custom={"type": "location", "location": {"latitude": 48.8656, "longitude": 2.3212,
                                                        "name": "Maison Solenne Paris"}}),
    said("Here is the boutique.", custom={"type": "location", "location": {"latitude": 48.8656,
                                                                            "longitude": 2.3212}}),
], ids=["template", "image", "captioned image", "document", "location", "text with a location"])
def test_templates_media_and_locations_never_merge(other: dict[str, Any]) -> None:
    before, after = said("Here you are."), said("Anything else?")
    out = merge_responses([before, other, after])
    assert out == [before, other, after]
    assert out[1] is other


@pytest.mark.parametrize("buttons", [
    BOUTIQUES,  # four buttons: a list
    [{"title": "A private viewing, please", "payload": "/inform"}, *YES_NO],  # a title over 20
], ids=["four buttons", "long title"])
def test_a_list_keeps_its_response_alone(buttons: list[dict[str, Any]]) -> None:
    listed = said("Which would you like?", buttons=buttons)
    assert render_response(listed)[-1].message["interactive"]["type"] == "list"
    before, after = said("Very well."), said("Take your time.")
    assert merge_responses([before, listed, after]) == [before, listed, after]
    assert merge_responses([listed, after]) == [listed, after]


@pytest.mark.parametrize(("first", "second"), [
    ({}, {"purpose": "order_update"}),  # a reply and a message the maison starts
    ({"purpose": "order_update"}, {"purpose": "appointment_reminder"}),
    ({"purpose": "order_update", "origin": "ob:1:1"}, {"purpose": "order_update", "origin": "ob:2:1"}),
    ({"purpose": "order_update", "origin": "ob:1:1"}, {"purpose": "order_update"}),
    ({"wa_params": {"order": "SOL-1"}}, {"wa_params": {"order": "SOL-2"}}),
], ids=["reply and bot purpose", "two purposes", "two origins", "origin and none", "two parameter sets"])
def test_different_purposes_or_origins_never_merge(first: dict[str, Any], second: dict[str, Any]) -> None:
    a, b = said("First.", metadata=first), said("Second.", metadata=second)
    assert merge_responses([a, b]) == [a, b]


def test_a_reply_without_purpose_merges_with_one_that_names_it() -> None:
    [merged] = merge_responses([said("First."), said("Second.", metadata={"purpose": "service_reply"})])
    assert render_response(merged)[0].purpose == "service_reply"


def test_metadata_is_kept_where_the_parts_agree() -> None:
    common = {"purpose": "order_update", "origin": "ob:7:1", "wa_params": {"order": "SOL-104233"}}
    a = said("Your order left Paris.", metadata={**common, "tone": "warm", "styled": True},
             utter_action="utter_order_left")
    b = said("It arrives on Friday.", metadata={**common, "tone": "brief", "styled": True},
             utter_action="utter_order_eta")
    [merged] = merge_responses([a, b])
    assert merged["metadata"] == {**common, "styled": True}
    assert "timestamp" not in merged  # each part had its own
    [out] = render_response(merged)
    assert (out.purpose, out.origin, dict(out.params)) == ("order_update", "ob:7:1", {"order": "SOL-104233"})


def test_the_merged_text_must_fit_one_message() -> None:
    half = "x" * ((MAX_TEXT - 2) // 2)  # two halves and the blank line: exactly the limit
    assert len(merge_responses([said(half), said(half)])) == 1
    assert len(merge_responses([said(half), said(half + "x")])) == 2
    # Under reply buttons the body holds 1,024.
    head = "y" * (MAX_INTERACTIVE_BODY - 2 - len("Shall I?"))
    [merged] = merge_responses([said(head), said("Shall I?", buttons=YES_NO)])
    assert len(merged["text"]) == MAX_INTERACTIVE_BODY and len(render_response(merged)) == 1
    over = [said(head + "y"), said("Shall I?", buttons=YES_NO)]
    assert merge_responses(over) == over


def test_buttons_close_a_message() -> None:
    ask = said("Shall I hold it for you?", buttons=YES_NO, utter_action="utter_ask_hold")
    after = said("Otherwise it goes back on display tomorrow.", utter_action="utter_display")
    assert merge_responses([ask, after]) == [ask, after]
    a, b = said("Noted."), said("Which time suits you?", buttons=YES_NO)
    c, d = said("One more thing."), said("Shall I send a reminder?", buttons=YES_NO)
    first, second = merge_responses([a, b, c, d])
    assert bodies([first, second]) == ["Noted.\n\nWhich time suits you?",
                                       "One more thing.\n\nShall I send a reminder?"]
    assert first["buttons"] == second["buttons"] == YES_NO


def test_a_consent_confirmation_stays_alone() -> None:
    # The opt-out is recorded by this response's name before the client reads it.
    stop = said("You will receive no more messages from us.", utter_action="utter_opt_out")
    after = said("Have a lovely day.", utter_action="utter_goodbye")
    assert merge_responses([stop, after]) == [stop, after]
    assert merge_responses([after, stop]) == [after, stop]


def test_the_merged_name_fits_the_outbound_record() -> None:
    parts = [said(f"Part {i}.", utter_action=f"utter_a_rather_long_response_name_{i:02d}") for i in range(12)]
    out = merge_responses(parts)
    assert 1 < len(out) < len(parts)
    assert all(len(m.get("utter_action") or "") <= MAX_UTTER_ACTION for m in out)
    assert "\n\n".join(bodies(out)) == "\n\n".join(f"Part {i}." for i in range(12))


def test_blank_text_and_odd_buttons_are_left_to_the_renderer() -> None:
    blank = said("   ", buttons=YES_NO)
    odd = said("Pick one", buttons={"title": "Yes"})
    text = said("Hello.")
    assert merge_responses([text, blank, odd, said("Bye.")])[1:3] == [blank, odd]


def test_off_sends_the_responses_as_they_came() -> None:
    responses = [said("One."), said("Two.")]
    out = merge_responses(responses, MergeConfig(enabled=False))
    assert out == responses and all(a is b for a, b in zip(out, responses, strict=True))


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("", True), ("on", True), (" ON ", True),
                                                 ("off", False), ("Off", False)])
def test_the_setting(value: str | None, enabled: bool) -> None:
    environ = {} if value is None else {"SALON_MERGE_REPLIES": value}
    assert MergeConfig.from_env(environ).enabled is enabled


def test_a_wrong_setting_is_refused() -> None:
    with pytest.raises(MergeConfigError, match="SALON_MERGE_REPLIES must be on or off"):
        MergeConfig.from_env({"SALON_MERGE_REPLIES": "sometimes"})


def test_random_turns_keep_every_word_in_order_and_each_merged_message_renders_as_one() -> None:
    rng = random.Random(20261001)
    kinds = ["text", "text", "text", "buttons", "list", "image", "template", "bot", "long"]
    for _ in range(300):
        turn = []
        for index in range(rng.randint(1, 7)):
            kind = rng.choice(kinds)
            text = f"w{index} " * rng.randint(1, 40)
            if kind == "buttons":
                turn.append(said(text, buttons=YES_NO, utter_action=f"utter_{index}"))
            elif kind == "list":
                turn.append(said(text, buttons=BOUTIQUES, utter_action=f"utter_{index}"))
            elif kind == "image":
                turn.append(said(None, image=f"https://maison-solenne.example/{index}.jpg"))
            elif kind == "template":
                turn.append(said(None, custom={"wa_template": "order_update"}))
            elif kind == "bot":
                turn.append(said(text, metadata={"purpose": "order_update"}, utter_action=f"utter_{index}"))
            elif kind == "long":
                turn.append(said(f"w{index} " * 700, utter_action=f"utter_{index}"))
            else:
                turn.append(said(text, utter_action=f"utter_{index}"))
        out = merge_responses(turn)
        assert len(out) <= len(turn)
        words = [w for r in turn for w in (r.get("text") or "").split()]
        assert [w for r in out for w in (r.get("text") or "").split()] == words
        media = [r for r in turn if r.get("image") or r.get("custom")]
        assert [r for r in out if r.get("image") or r.get("custom")] == media
        for message in out:
            if message in turn:
                continue
            rendered = render_response(message)
            assert len(rendered) == 1, message
            assert len(message["utter_action"]) <= MAX_UTTER_ACTION


# --------------------------------------------------------------------------- waiting content


def _t(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


def _b(body: str) -> dict[str, Any]:
    return {"type": "interactive", "interactive": {"type": "button", "body": {"text": body}, "action": {
        "buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes, please"}}]}}}


def test_waiting_texts_leave_as_one_and_buttons_close_the_message() -> None:
    image = {"type": "image", "image": {"link": "https://example.org/a.jpg"}}
    template = {"type": "template", "template": {"name": "x", "language": {"code": "en"}}}
    messages = [_t("Your alteration is ready."), _t("We kept the scarf."), _b("Shall I hold both?"),
                _t("Also:"), image, template, _t("Last.")]
    assert merge_messages(messages) == [[0, 1, 2], [3], [4], [5], [6]]
    merged = joined_message(messages[:3])
    assert merged["interactive"]["body"]["text"] == (
        "Your alteration is ready.\n\nWe kept the scarf.\n\nShall I hold both?")
    assert merged["interactive"]["action"] == messages[2]["interactive"]["action"]
    assert joined_message(messages[:2]) == _t("Your alteration is ready.\n\nWe kept the scarf.")
    assert merge_messages(messages, MergeConfig(enabled=False)) == [[i] for i in range(len(messages))]


def test_waiting_texts_that_would_not_fit_stay_apart() -> None:
    long = "x" * 3000
    assert merge_messages([_t(long), _t(long)]) == [[0], [1]]
    assert merge_messages([_t("a" * 600), _b("b" * 500)]) == [[0], [1]]  # 1,024 under buttons
    with_header = _b("Pick one")
    with_header["interactive"]["header"] = {"type": "text", "text": "Our news"}
    assert merge_messages([_t("hello"), with_header]) == [[0], [1]]


def test_a_response_she_moved_past_loses_its_reply_buttons_only() -> None:
    greet = {"text": "Good day. How may I help?", "buttons": [{"title": "Book a visit", "payload": "/book"}],
             "utter_action": "utter_greet"}
    assert superseded(greet) == {"text": "Good day. How may I help?", "utter_action": "utter_greet"}
    listed = {"text": "Pick a time", "buttons": [{"title": f"{h}:00", "payload": f"/t{h}"} for h in range(9, 14)]}
    assert superseded(listed) is listed  # a list is not merged, nor changed
    image = {"text": None, "image": "https://maison-solenne.example/aurore-tote.jpg"}
    assert superseded(image) is image
    plain = {"text": "Of course."}
    assert superseded(plain) is plain


# --------------------------------------------------------------------------- leads


def test_a_part_followed_by_another_says_its_lead() -> None:
    greet = said("Good morning, Ms Laurent. How may I help you?", buttons=YES_NO,
                 metadata={"lead": "Good morning, Ms Laurent."})
    welcome = said("With pleasure. Is there anything else I may do for you?",
                   utter_action="utter_youre_welcome", metadata={"lead": "With pleasure."})
    goodbye = said("Thank you for writing to us. I wish you a lovely day.", utter_action="utter_goodbye")
    [merged] = merge_responses([superseded(greet), welcome, goodbye])
    assert merged["text"] == ("Good morning, Ms Laurent.\n\nWith pleasure.\n\n"
                              "Thank you for writing to us. I wish you a lovely day.")
    assert "lead" not in merged.get("metadata", {})
    # Last in its message, a response says all of itself; alone, it is left as it came.
    [merged] = merge_responses([goodbye, welcome])
    assert merged["text"].endswith("With pleasure. Is there anything else I may do for you?")
    assert merge_responses([welcome]) == [welcome]
    # Off: each response whole, in its own message.
    assert bodies(merge_responses([welcome, goodbye], MergeConfig(enabled=False))) == [
        welcome["text"], goodbye["text"]]


def test_every_lead_of_the_domain_opens_its_own_text() -> None:
    from pathlib import Path

    import yaml

    responses = yaml.safe_load(Path("domain.yml").read_text(encoding="utf-8"))["responses"]
    leads = [(name, variant) for name, variants in responses.items() for variant in variants
             if (variant.get("metadata") or {}).get("lead")]
    assert {name for name, _ in leads} >= {"utter_greet", "utter_youre_welcome"}
    for name, variant in leads:
        lead = variant["metadata"]["lead"]
        assert variant["text"].startswith(lead) and len(lead) < len(variant["text"]), name
    for name in ("utter_greet", "utter_youre_welcome"):
        assert all((v.get("metadata") or {}).get("lead") for v in responses[name]), name
