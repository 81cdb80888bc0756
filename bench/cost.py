"""What a conversation costs since Meta bills every message (2026-10-01): billable messages
and cost per resolved conversation, with the merging of a turn's responses off (the
baseline) and on, in the same run.

Each run starts the whole system (:mod:`salon.dev.stack`: the Cloud API emulator as Meta,
the action server, ``rasa run`` with the trained model and the WhatsApp channel) with
``SALON_MERGE_REPLIES`` off, then on, at the same instant and on the same seeded book,
and plays the same scripted conversations through the emulator: every client of the
maison's book, in her own language, plus new numbers (prospects in English, French and
Italian), each with one of several everyday scripts (an order's whereabouts, opening
hours, a gift with a budget, aftercare, an event, thanks and goodbye …). Half the scripts
are paced (she waits for each answer before writing again); the other half open with a
burst (a greeting and the request as two messages in a row, as clients write on
WhatsApp) or close with one ("Thanks", "Bye"). A burst waits until the channel has
finished its turns; a few clients write at once.

Figures, read from the stack's own database once the emulator is idle: messages Meta
bills (``wa_pricing``: billable and delivered) and their cost by the rate card, per
*resolved* conversation (every message of the client answered and no handoff to a
person), and how many conversations were resolved in each run, for all of them and for
the paced and bursty halves apart. Goal: at least 30 % fewer billable messages with
merging on. The last line is one JSON object.

Needs the trained model (`make train`). Options: --conversations (at least 50), --parallel.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from salon.config import PROJECT_ROOT
from salon.dev.stack import Stack, StackConfig
from salon.guard.sent import outbound_table
from salon.integrations.seed import load_maison
from salon.pricing.ledger import ledger_table
from salon.storage.db import make_sync_engine
from salon.webhook.inbox import inbox_table

MODEL = PROJECT_ROOT / "models" / "salon.tar.gz"
START = datetime(2026, 11, 18, 9, 30, tzinfo=timezone.utc)
"""A Wednesday morning after Meta's 2026-10-01 change: every reply is billed."""
TURN_TIMEOUT_S = 60.0

Burst = tuple[str, ...]
"""Messages a client sends one after the other without waiting for an answer."""

SCRIPTS: dict[str, list[list[Burst]]] = {
    # Half the scripts are paced (she waits for each answer), half open with a burst (a
    # greeting and the request in two messages, as clients write on WhatsApp) or close
    # with one ("Thanks" then "Bye").
    "en": [
        [("Hello",), ("Where is my order?",), ("Thank you",), ("Bye",)],
        [("Good morning", "What are your opening hours in London?"), ("Thanks a lot",)],
        [("Hi",), ("I'm looking for a birthday gift for my husband, under 800 euros",), ("Thank you", "Goodbye")],
        [("Hello", "How should I care for my cashmere coat?"), ("Thanks",)],
        [("Hi there",), ("Are there any events coming up?",), ("Thank you",)],
        [("Hello", "Do you have boutiques in Milan?"), ("Great, thanks", "Goodbye")],
        [("Good afternoon",), ("Are you a bot?",), ("ok thanks",)],
        [("Hello", "What services do you offer in the boutique?"), ("Thank you very much",)],
    ],
    "fr": [
        [("Bonjour",), ("Où en est ma commande ?",), ("Merci",), ("Au revoir",)],
        [("Bonjour", "Quels sont vos horaires à Paris ?"), ("Merci beaucoup",)],
        [("Bonsoir",), ("Je cherche un cadeau d'anniversaire pour mon mari, moins de 800 euros",),
         ("Merci", "Bonne soirée")],
        [("Bonjour", "Comment entretenir mon manteau en cachemire ?"), ("Merci",)],
        [("Bonjour",), ("Avez-vous des événements prochainement ?",), ("Merci",)],
        [("Bonjour", "Avez-vous une boutique à Milan ?"), ("Parfait, merci", "Au revoir")],
        [("Bonjour",), ("Est-ce que je parle à un robot ?",), ("d'accord merci",)],
        [("Bonjour", "Quels services proposez-vous en boutique ?"), ("Merci beaucoup",)],
    ],
    "it": [
        [("Buongiorno",), ("Dov'è il mio ordine?",), ("Grazie",), ("Arrivederci",)],
        [("Buongiorno", "Quali sono gli orari a Milano?"), ("Grazie mille",)],
        [("Buonasera",), ("Cerco un regalo di compleanno per mio marito, sotto gli 800 euro",),
         ("Grazie", "Buona serata")],
        [("Buongiorno", "Come devo curare il mio cappotto di cashmere?"), ("Grazie",)],
        [("Buongiorno",), ("Ci sono eventi in programma?",), ("Grazie",)],
        [("Buongiorno", "Avete una boutique a Parigi?"), ("Perfetto, grazie", "Arrivederci")],
        [("Buongiorno",), ("Sto parlando con un robot?",), ("va bene grazie",)],
        [("Buongiorno", "Quali servizi offrite in boutique?"), ("Grazie mille",)],
    ],
}


@dataclass(frozen=True)
class Conversation:
    number: str
    name: str
    language: str
    bursts: tuple[Burst, ...]

    @property
    def paced(self) -> bool:
        """She waits for every answer before writing again."""
        return all(len(burst) == 1 for burst in self.bursts)


def conversations(count: int) -> list[Conversation]:
    """Every client of the book, then new numbers, until ``count``; each with a script of
    her language, in turn."""
    maison = load_maison(PROJECT_ROOT / "data" / "maison")
    out: list[Conversation] = []
    for index, client in enumerate(maison.clients.values()):
        number = client.wa_id or ""
        if not number:
            continue
        language = client.language if client.language in SCRIPTS else "en"
        scripts = SCRIPTS[language]
        out.append(Conversation(number, f"{client.first_name} {client.last_name}", language,
                                tuple(scripts[index % len(scripts)])))
    prefixes = {"en": "447700901", "fr": "336000019", "it": "393000019"}
    extra = 0
    while len(out) < count:
        language = ("en", "fr", "it")[extra % 3]
        scripts = SCRIPTS[language]
        out.append(Conversation(f"{prefixes[language]}{extra:03d}", f"Guest {extra}", language,
                                tuple(scripts[extra % len(scripts)])))
        extra += 1
    return out[:count]


def _turn(engine: Any, wamid: str) -> tuple[str | None, str | None]:
    """The state of an inbound message's turn and the conversation id it went to."""
    i = inbox_table.c
    with engine.connect() as conn:
        row = conn.execute(select(i.state, i.sender_id).where(i.wamid == wamid)).one_or_none()
    return (row.state, row.sender_id) if row is not None else (None, None)


def play(stack: Stack, conversation: Conversation, engine: Any) -> frozenset[str]:
    """One conversation, burst after burst; each burst waits for the end of the turns of
    the previous one. Returns every id the client went by (her number, her conversation
    id)."""
    ids = {conversation.number}
    with httpx.Client(base_url=stack.config.emulator_url, timeout=30) as http:
        for burst in conversation.bursts:
            wamids = [http.post("/_emulator/inbound", json={"from": conversation.number, "text": text,
                                                            "name": conversation.name}).json()["wamid"]
                      for text in burst]
            deadline = time.monotonic() + TURN_TIMEOUT_S
            for wamid in wamids:
                while True:
                    state, sender = _turn(engine, wamid)
                    if state in ("done", "skipped", "failed", "abandoned"):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no end of turn for {burst!r} ({conversation.number})\n"
                                           f"{stack.log_tail('rasa')}")
                    time.sleep(0.05)
                if sender:
                    ids.add(sender)
    return frozenset(ids)


def run(mode: str, items: list[Conversation], parallel: int, workdir: Path) -> dict[str, Any]:
    config = StackConfig(model=MODEL, workdir=workdir, emulator_port=0, rasa_port=0, actions_port=0,
                         start_at=START, seed_today=True, extra_env={"SALON_MERGE_REPLIES": mode})
    with Stack(config).running() as stack:
        engine = make_sync_engine(config.effective_database_url)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            clients = list(pool.map(lambda c: play(stack, c, engine), items))
        # An answer kept for a turn that never came leaves within CARRY_S (3 s).
        time.sleep(3.5)
        stack.emulator("POST", "/_emulator/wait_idle", json={"timeout": 60})
        time.sleep(1.0)
        elapsed = time.monotonic() - started
        figures = _figures(engine, clients)
        for name, paced in (("paced", True), ("bursts", False)):
            figures[name] = _figures(engine, [ids for ids, c in zip(clients, items, strict=True) if c.paced == paced])
        engine.dispose()
    figures["seconds"] = round(elapsed, 1)
    return figures


def _figures(engine: Any, clients: list[frozenset[str]]) -> dict[str, Any]:
    """Per client (all her ids): messages she wrote, messages sent to her, what Meta bills."""
    every = sorted({i for ids in clients for i in ids})
    o, p, i = outbound_table.c, ledger_table.c, inbox_table.c
    with engine.connect() as conn:
        inbound = dict(conn.execute(select(i.sender_id, func.count()).where(i.sender_id.in_(every))
                                    .group_by(i.sender_id)).all())
        sent = dict(conn.execute(
            select(o.recipient, func.count()).where(o.recipient.in_(every), o.wamid.isnot(None))
            .group_by(o.recipient)).all())
        billed = {row[0]: (int(row[1]), int(row[2] or 0)) for row in conn.execute(
            select(p.recipient, func.count(), func.sum(p.cost_micros))
            .where(p.recipient.in_(every), p.billable == 1, p.delivered == 1).group_by(p.recipient)).all()}
        handed = _handed_over(conn)

    def total(table: dict[str, Any], ids: frozenset[str], index: int | None = None) -> int:
        return sum((table[x] if index is None else table[x][index]) for x in ids if x in table)

    resolved = [ids for ids in clients
                if total(inbound, ids) > 0 and total(sent, ids) > 0 and not ids & handed]
    messages = sum(total(billed, ids, 0) for ids in clients)
    cost = sum(total(billed, ids, 1) for ids in clients)
    per = max(len(resolved), 1)
    return {
        "conversations": len(clients), "resolved": len(resolved),
        "handed_over": sum(1 for ids in clients if ids & handed),
        "client_messages": sum(total(inbound, ids) for ids in clients),
        "messages_sent": sum(total(sent, ids) for ids in clients),
        "billable": messages, "cost_micros": cost,
        "billable_per_conversation": round(messages / per, 3),
        "cost_per_conversation": round(cost / per / 1_000_000, 5),
    }


def _handed_over(conn: Any) -> set[str]:
    """Every id of a client handed over to a person in this run."""
    from salon.advisors.handoff import handoffs_table

    h = handoffs_table.c
    try:
        rows = conn.execute(select(h.wa_id, h.user_id, h.conversation_id)).all()
    except Exception:  # no handoff was ever opened: the table may not exist
        return set()
    return {value for row in rows for value in row if value}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=6)
    parser.add_argument("--keep", type=Path, help="keep each run's folder (database, logs) under this one")
    parser.add_argument("--only", choices=("off", "on"), help="one run only (to look at it; no comparison)")
    args = parser.parse_args(argv)
    if args.conversations < 50:
        parser.error("--conversations: at least 50")
    if not MODEL.exists():
        print(f"no trained model at {MODEL}: run `make train`", file=sys.stderr)
        return 2
    items = conversations(args.conversations)
    with tempfile.TemporaryDirectory(prefix="salon-cost-") as tmp:
        root = args.keep or Path(tmp)
        if args.only:
            print(json.dumps(run(args.only, items, args.parallel, root / args.only)))
            return 0
        before = run("off", items, args.parallel, root / "off")
        print("merging off:", json.dumps(before), flush=True)
        after = run("on", items, args.parallel, root / "on")
        print("merging on: ", json.dumps(after), flush=True)
    def fewer_of(b: dict[str, Any], a: dict[str, Any]) -> float:
        return round(1 - a["billable_per_conversation"] / b["billable_per_conversation"], 3)

    fewer = fewer_of(before, after)
    result = {
        "conversations": len(items),
        "resolved_before": before["resolved"], "resolved_after": after["resolved"],
        "billable_per_conversation_before": before["billable_per_conversation"],
        "billable_per_conversation_after": after["billable_per_conversation"],
        "cost_per_conversation_before": before["cost_per_conversation"],
        "cost_per_conversation_after": after["cost_per_conversation"],
        "currency": "USD",
        "fewer_billable": round(fewer, 3),
        "fewer_billable_paced": fewer_of(before["paced"], after["paced"]),
        "fewer_billable_bursts": fewer_of(before["bursts"], after["bursts"]),
        "conversations_paced": before["paced"]["conversations"],
        "goal_met": fewer >= 0.30 and after["resolved"] >= before["resolved"],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
