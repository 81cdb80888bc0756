"""Assistant responses → Cloud API messages within WhatsApp's limits."""

from __future__ import annotations

import pytest

from salon.whatsapp.addressing import is_bsuid
from salon.whatsapp.messages import (
    MAX_TEXT,
    RenderError,
    render_response,
    split_text,
)
from salon.whatsapp.signature import SignatureCheck, check_signature, sign


def test_short_text_is_one_message() -> None:
    [out] = render_response({"text": "Good day, Claire.", "utter_action": "utter_greet"})
    assert out.message == {"type": "text", "text": {"body": "Good day, Claire."}}
    assert out.purpose == "service_reply" and out.utter_action == "utter_greet"


def test_long_text_splits_at_paragraphs_then_sentences_within_the_limit() -> None:
    paragraph = ("The Ondine bag is cut from full-grain calfskin. " * 40).strip()
    text = "\n\n".join([paragraph] * 5)
    chunks = split_text(text)
    assert len(chunks) > 1
    assert all(len(c) <= MAX_TEXT for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # never cut mid-sentence here
    assert " ".join(chunks).split() == text.split()  # nothing lost, nothing added
    messages = render_response({"text": text})
    assert [m.message["text"]["body"] for m in messages] == chunks


def test_unbreakable_text_is_cut_hard_but_kept_whole() -> None:
    word = "x" * (MAX_TEXT * 2 + 10)
    chunks = split_text(word)
    assert [len(c) for c in chunks] == [MAX_TEXT, MAX_TEXT, 10]
    assert "".join(chunks) == word


def test_three_short_buttons_become_reply_buttons_with_payload_ids() -> None:
    [out] = render_response({
        "text": "Is this about an order, an appointment, or something else?",
        "buttons": [
            {"title": "An order", "payload": "/check_order_status"},
            {"title": "An appointment", "payload": "/book_appointment"},
            {"title": "A client advisor", "payload": '/inform{"boutique":"paris"}'},
        ],
    })
    interactive = out.message["interactive"]
    assert interactive["type"] == "button"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "/check_order_status", "title": "An order"},
        {"id": "/book_appointment", "title": "An appointment"},
        {"id": '/inform{"boutique":"paris"}', "title": "A client advisor"},
    ]


def test_more_than_three_or_long_titles_become_a_list() -> None:
    buttons = [{"title": f"Boutique number {n}", "payload": f"/inform{{\"n\":{n}}}"} for n in range(5)]
    [out] = render_response({"text": "Which boutique?", "buttons": buttons})
    interactive = out.message["interactive"]
    assert interactive["type"] == "list"
    rows = interactive["action"]["sections"][0]["rows"]
    assert [r["title"] for r in rows] == [b["title"] for b in buttons]
    assert len(interactive["action"]["button"]) <= 20

    long = [{"title": "A private viewing in the Paris salon at rue Saint-Honoré", "payload": "/a"}]
    [out] = render_response({"text": "Shall I?", "buttons": long})
    row = out.message["interactive"]["action"]["sections"][0]["rows"][0]
    assert out.message["interactive"]["type"] == "list"
    assert len(row["title"]) <= 24 and len(row.get("description", "")) <= 72
    assert row["title"].endswith("…") and row["description"].startswith("…")


def test_over_ten_buttons_is_refused_not_truncated() -> None:
    with pytest.raises(RenderError, match="at most 10"):
        render_response({"text": "?", "buttons": [{"title": str(n), "payload": f"/{n}"} for n in range(11)]})


def test_long_text_with_buttons_keeps_the_buttons_on_the_last_part() -> None:
    text = ("Our artisans repair every piece by hand. " * 60).strip()
    messages = render_response({"text": text, "buttons": [{"title": "Yes", "payload": "/affirm"}]})
    assert messages[-1].message["type"] == "interactive"
    assert all(m.message["type"] == "text" for m in messages[:-1])
    assert len(messages[-1].message["interactive"]["body"]["text"]) <= 1024


def test_images_attachments_and_custom_payloads() -> None:
    image, doc = render_response({"text": None, "image": "https://cdn.example/ondine.jpg",
                                  "attachment": "https://cdn.example/care-guide.pdf"})
    assert image.message == {"type": "image", "image": {"link": "https://cdn.example/ondine.jpg"}}
    assert doc.message["document"] == {"link": "https://cdn.example/care-guide.pdf", "filename": "care-guide.pdf"}
    [by_id] = render_response({"image": "1234567890"})
    assert by_id.message == {"type": "image", "image": {"id": "1234567890"}}
    location = {"type": "location", "location": {"latitude": 48.87, "longitude": 2.33, "name": "Paris"},
                "to": "ignored"}
    [loc] = render_response({"custom": location})
    assert loc.message == {"type": "location", "location": location["location"]}
    [tpl] = render_response({"custom": {"wa_template": "order_shipped", "wa_params": {"order": "SOL-1"},
                                        "purpose": "order_shipped"}})
    assert tpl.template == "order_shipped" and tpl.purpose == "order_shipped"
    with pytest.raises(RenderError):
        render_response({"custom": {"hello": "world"}})


def test_response_metadata_names_the_purpose_and_params() -> None:
    [out] = render_response({"text": "Your order has left the atelier.", "utter_action": "utter_order_shipped",
                             "metadata": {"purpose": "order_shipped", "wa_params": {"order_number": "SOL-1"}}})
    assert out.purpose == "order_shipped" and out.params == {"order_number": "SOL-1"}


def test_signature_checks() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    header = sign(body, "secret")
    assert check_signature(body, header, "secret") is SignatureCheck.VALID
    assert check_signature(body, header.upper().replace("SHA256=", "sha256="), "secret") is SignatureCheck.VALID
    assert check_signature(body + b" ", header, "secret") is SignatureCheck.INVALID
    assert check_signature(body, None, "secret") is SignatureCheck.MISSING
    assert check_signature(body, "sha256=zz\u00e9", "secret") is SignatureCheck.INVALID


def test_bsuid_shape() -> None:
    assert is_bsuid("US.13491208655302741918")
    assert is_bsuid("US.ENT.11815799212886844830")
    assert not is_bsuid("33600000001")
