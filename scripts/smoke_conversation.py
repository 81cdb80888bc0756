"""End-to-end smoke test of the trained assistant: real servers, real HTTP, fixed instants.

Starts a stack (:mod:`salon.dev.stack`: the action server and ``rasa run --enable-api``, its API
behind a JWT, with its own seeded database, on free loopback ports), then, at each
instant given with ``--at`` (every process's clock is moved there through the stack's
shared clock file), holds one short conversation per core intent through the REST channel
and checks each answer. Dates the client says are chosen from that instant, so the result
does not depend on the day the smoke runs. Also checks that the HTTP API refuses requests
without the token. Stops every process at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from salon.clock import SystemClock, write_offset_file  # noqa: E402
from salon.dev.demo import instant  # noqa: E402
from salon.dev.stack import Stack, StackConfig, StackError  # noqa: E402
from tests.instants import FROZEN_INSTANTS, REFERENCE_NOW, parse_instant  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")
PARIS_CLOSED = {6}  # Sunday (data/maison/boutiques.yml)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def visit_day(now: datetime) -> str:
    """A weekday a client would name for a visit: at least two days after ``now`` in Paris,
    on a day the Paris boutique opens ("monday" on a Friday evening, "saturday" on New
    Year's Eve)."""
    day = now.astimezone(PARIS).date() + timedelta(days=2)
    while day.weekday() in PARIS_CLOSED:
        day += timedelta(days=1)
    return WEEKDAYS[day.weekday()]


def conversations(now: datetime) -> list[list[tuple[str, str]]]:
    """(what a client writes, a phrase the assistant's answer must contain); button payloads
    are shown after the text as " [payload]", so a phrase can pin what a tap will send."""
    return [
        [("Good evening", "welcome to Maison Solenne"), ("thank you", "With pleasure"),
         ("no, that's all", "")],
        [("are you a bot?", "digital assistant")],
        [("is the Aurore tote available in tan?", "The Aurore tote in Tan is available in Paris")],
        [("how much is the Méridien 38", "The Méridien 38")],
        [("how do I clean my coat?", "Which piece"),
         ("the Riviera coat", "For the Riviera cashmere coat: ")],
        [
            ("I would like to book an appointment", 'suit you? [/inform{"boutique": "paris"}]'),
            ('/inform{"boutique": "paris"}', "What shall we prepare"),
            ('/inform{"service": "private_viewing"}', "Which day and time"),
            (f"{visit_day(now)} afternoon",
             'free times in Paris. Which would suit you? [/inform{"appointment_start": '),
        ],
        # An answer the form cannot use (however NLU reads "Rome"): where the boutiques
        # are, then its question asked again, alone (without its "With pleasure.").
        [("I would like to book an appointment", "Which boutique would suit you?"),
         ("Rome", "Our boutiques are in Paris, London and Milan. / Which boutique would suit you? [")],
        # Everything in her first sentence heard: the day (not "evening" of "evening
        # dresses"), whom she comes with; a time later means that day.
        [(f"I'd like to come in {visit_day(now)} with my daughter to look at evening dresses",
          "Which boutique would suit you?"),
         ("London", "What shall we prepare"),
         ("around 11", f"Very well, {visit_day(now).capitalize()} "),
         ("a styling session", " at 11:00 in London, for 2. Shall I confirm?")],
        # The moment given while the service was asked: said back, then the question again.
        [("I would like to book an appointment in Paris", "What shall we prepare"),
         (f"{visit_day(now)} at 3pm", f"Very well, {visit_day(now).capitalize()} "),
         ("a fitting", "[/inform{")],
        [("where is my order?", "order number"), ("SOL-104233", "order SOL-104233")],
        [("where is my order?", "order number"), ("thank you", "With pleasure")],
        # A question on paying is her advisor's to answer: no "with pleasure" that reads as a yes.
        [("Do you accept Amex?", "Let me pass your question on.")],
        # A stranger's return: the maison's policy as its data states it, and who arranges it.
        [("the dress is too small, can I send it back?",
          "within 30 days of reaching you, unworn, with its labels and in its packaging"),
         ("how do I get a refund?", "within 14 days of the piece arriving with us. A piece may come back "
          "within 30 days of reaching you, unworn, with its labels and in its packaging. "
          "[/talk_to_advisor] [/book_appointment]")],
        # The boutique she asks about, first.
        [("is the Méridien 38 available in London?", "The Méridien 38 is down to its last piece in London.")],
        # A size: the availability in it, or the sizes the piece is made in.
        [("is the Riviera coat available in size 40?", "The Riviera cashmere coat in size 40 is available"),
         ("and in 48?", "is made in sizes 34, 36, 38, 40, 42 and 44, not in 48")],
        # Shipping abroad: her advisor answers, not the order form.
        [("do you ship to Switzerland?", "Let me pass your question on.")],
        # In her language and her words: the materials in French, the colour as she wrote it.
        [("le manteau Riviera est-il disponible ?", "réalisé en cachemire double face"),
         ("et en rouge ?", "mais pas en rouge")],
        [("what are your opening hours in London?", "Our London boutique is open Monday to Saturday")],
        [("are there any events coming up?", "by personal invitation")],
        [("can you recommend something to wear to a summer wedding?",
          "I would suggest the Amalfi silk dress"),
         ("yes please", "will reply to you here")],
        [("the clasp on my bracelet broke", "Which piece is it?"),
         ("the Astre bracelet",
          "Could you send me a photo? It helps our atelier a great deal. [/deny]"),
         ("yes", 'Please send it here whenever you are ready, or choose "No photo". [/deny]')],
        [("is the Riviera coat available?", "The Riviera cashmere coat is available"),
         ("perfect, I'll take it", "With pleasure, we will arrange it for you. A client advisor from our Paris")],
        [("tell me when the Ondine bucket bag is back in black",
          "is available at our London, Milan and Paris boutiques")],
        [("I'd love to attend the trunk show with my husband", "by personal invitation")],
        [("can I have my initials embossed on a card holder", "I have prepared your request")],
        [("I want to speak to my advisor",
          "client advisor from our Paris boutique will reply to you here")],
        [("my coat arrived damaged, this is unacceptable", "truly sorry")],
        [("STOP", "no longer receive"), ("START", "sent only once you have agreed to it")],
        [("who won the football last night", "beyond what I can help")],
    ]


def answers_of(reply: httpx.Response) -> str:
    return " / ".join(
        item.get("text", "")
        + "".join(f" [{button.get('payload')}]" for button in item.get("buttons", []))
        for item in reply.json()
    )


def converse(stack: Stack, at: datetime) -> tuple[int, int]:
    """Move every clock to ``at``, hold the conversations; (passed, failed)."""
    write_offset_file(stack.config.clock_file, at - SystemClock().now())
    passed = failed = 0
    label = at.isoformat()
    for conversation in conversations(at):
        sender = f"smoke-{uuid.uuid4().hex[:10]}"
        for text, expected in conversation:
            reply = httpx.post(f"{stack.config.rasa_url}/webhooks/rest/webhook",
                               json={"sender": sender, "message": text}, timeout=60)
            answers = answers_of(reply) if reply.status_code == 200 else f"HTTP {reply.status_code}"
            if reply.status_code == 200 and answers and expected in answers:
                passed += 1
                print(f"smoke ok   [{label}] {text!r} -> {answers!r}")
            else:
                failed += 1
                print(f"smoke FAIL [{label}] {text!r} -> {answers!r} (expected {expected!r})")
    return passed, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/salon.tar.gz")
    parser.add_argument("--at", type=instant, action="append", default=None,
                        help="an instant to hold the conversations at (repeatable; default: "
                             "the suite's reference instant, then each frozen instant of "
                             "tests/instants.py)")
    parser.add_argument("--timeout", type=float, default=480.0,
                        help="seconds the servers may take to start")
    args = parser.parse_args(argv)
    instants: list[datetime] = args.at or [
        REFERENCE_NOW, *(parse_instant(moment) for moment in FROZEN_INSTANTS.values())]

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="salon-smoke-") as workdir:
        config = StackConfig(model=Path(args.model).resolve(), workdir=Path(workdir),
                             emulator_port=0, rasa_port=0, actions_port=0, start_at=instants[0],
                             start_timeout_s=args.timeout,
                             # loads in seconds, answers the same (scripts/rasa_quick_load.py)
                             quick_model_load=True)
        stack = Stack(config)
        try:
            with stack.running():
                refused = httpx.get(f"{config.rasa_url}/status", timeout=10).status_code
                allowed = httpx.get(f"{config.rasa_url}/status", headers=stack.rasa_headers(),
                                    timeout=10).status_code
                if (refused, allowed) == (401, 200):
                    passed += 1
                else:
                    failed += 1
                    print(f"smoke FAIL: /status answered {refused} without a token and {allowed} "
                          "with one, expected 401 and 200")
                for at in instants:
                    ok, bad = converse(stack, at)
                    passed, failed = passed + ok, failed + bad
                if failed:
                    for name in ("rasa", "actions"):
                        print(f"--- end of the {name} log ---\n{stack.log_tail(name, 40)}")
        except (StackError, httpx.HTTPError) as exc:
            failed += 1
            print(f"smoke FAIL: {type(exc).__name__}: {exc}")
    print(f"smoke: {passed} passed, {failed} failed at {len(instants)} instant(s)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
