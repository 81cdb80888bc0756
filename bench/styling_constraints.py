"""Do styling suggestions honour what the client said? Numbers, not pass/fail.

Every request of ``tests/llm/styling_requests.yml`` (English, French, Italian; known
clients with purchases and people the book does not know) is put to the styling turn
(:class:`salon.llm.responder.StylingAdvisor`) on a freshly seeded SQLite maison, as the
client it names writing from her WhatsApp number. Each piece an answer suggests is
checked against the catalog's own data (``data/maison/products.yml``: the price in the
currency of her budget; the set's ``fit`` table: who the piece is cut for) and against
what she owns (the set's ``owned`` list):

- ``budget_respected``: share of suggested pieces within the budget she gave;
- ``recipient_respected``: share cut for whom she meant them;
- ``owned_skipped``: share of suggested pieces she does not already own or have on order;
- ``nothing_fits_said``: share of the requests nothing can fit that got the plain
  "nothing fits" answer, and ``answered``: share of the others that got suggestions.

The baseline (same run, same clients) is the retrieval ranking of her raw words over the
whole catalog, without the constraint filters, and the offline responder's choice from
it: what the assistant suggested before. With ``SALON_LLM_BASE_URL`` and
``SALON_LLM_MODEL`` set (a local OpenAI-compatible server), the requests are also put to
the model path (clients without the ``llm`` consent are answered offline there too) and
reported as ``llm_…``. Otherwise only the offline responder runs.

The last line is one JSON object: ``budget_respected``, ``recipient_respected``,
``owned_skipped`` (overall, offline responder) and ``baseline_…`` equivalents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from salon.clock import ManualClock
from salon.config import PROJECT_ROOT
from salon.integrations.seed import seed_database
from salon.llm.audit import LlmAudit
from salon.llm.config import LlmSettings, load_llm_settings
from salon.llm.context import load_client_context
from salon.llm.offline import offline_answer
from salon.llm.responder import StylingAdvisor
from salon.storage.db import make_async_engine

REQUESTS = PROJECT_ROOT / "tests" / "llm" / "styling_requests.yml"
MAISON = PROJECT_ROOT / "data" / "maison"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
LANGUAGES = ("en", "fr", "it")
AROUND = (0.7, 1.1)
""""Around X": from 70 % to 110 % of X, as the set's header says."""


@dataclass(frozen=True)
class Maison:
    """What the checks read from the maison's data files, never from the code under test."""

    prices: Mapping[str, Mapping[str, int]]
    fit: Mapping[str, str]
    wa_ids: Mapping[str, str]
    currencies: Mapping[str, str]


def load_maison(requests: Mapping[str, Any]) -> Maison:
    products = yaml.safe_load((MAISON / "products.yml").read_text(encoding="utf-8"))["products"]
    clients = yaml.safe_load((MAISON / "clients.yml").read_text(encoding="utf-8"))["clients"]
    boutiques = yaml.safe_load((MAISON / "boutiques.yml").read_text(encoding="utf-8"))["boutiques"]
    by_boutique = {b["id"]: b["currency"] for b in boutiques}
    return Maison(
        prices={p["id"]: {"EUR": p["price"]["eur"], "GBP": p["price"]["gbp"]} for p in products},
        fit=dict(requests["fit"]),
        wa_ids={c["id"]: c["whatsapp"].lstrip("+") for c in clients if c.get("whatsapp")},
        currencies={c["id"]: by_boutique[c["home_boutique"]] for c in clients},
    )


def load_requests(path: Path = REQUESTS) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def within_budget(price: int, budget: Mapping[str, Any]) -> bool:
    """The set's budget semantics (see its header), on a price in the budget's currency."""
    kind, amount = budget["kind"], budget["amount"]
    if kind == "under":
        return price < amount
    if kind == "max":
        return price <= amount
    if kind == "around":
        return AROUND[0] * amount <= price <= AROUND[1] * amount
    if kind == "between":
        return amount <= price <= budget["upper"]
    return price >= amount


def suits(fit: str, recipient: str) -> bool:
    """Whether a piece cut for ``fit`` (women / anyone) suits ``recipient``."""
    if recipient == "any":
        return True
    if recipient == "child":
        return False
    if recipient == "anyone":
        return fit == "anyone"
    return fit == "anyone" or (fit == "women" and recipient == "woman") or (fit == "men" and recipient == "man")


def budget_currency(request: Mapping[str, Any], maison: Maison) -> str:
    said = (request.get("budget") or {}).get("currency")
    return said or (maison.currencies[request["client"]] if request.get("client") else "EUR")


def verdicts(request: Mapping[str, Any], piece: str, maison: Maison) -> dict[str, bool]:
    """For one suggested piece, each constraint the request declares: respected or not."""
    out: dict[str, bool] = {}
    if request.get("budget"):
        out["budget"] = within_budget(maison.prices[piece][budget_currency(request, maison)], request["budget"])
    if request.get("recipient"):
        out["recipient"] = suits(maison.fit[piece], request["recipient"])
    if request.get("owned"):
        out["owned"] = piece not in request["owned"]
    return out


@dataclass
class Tally:
    """Pieces checked and respected per constraint, and the requests' outcomes."""

    checked: dict[str, int] = field(default_factory=lambda: {"budget": 0, "recipient": 0, "owned": 0})
    kept: dict[str, int] = field(default_factory=lambda: {"budget": 0, "recipient": 0, "owned": 0})
    nothing_expected: int = 0
    nothing_said: int = 0
    fits_expected: int = 0
    answered: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, request: Mapping[str, Any], pieces: Sequence[str], nothing_said: bool, maison: Maison) -> None:
        if request.get("nothing_fits"):
            self.nothing_expected += 1
            self.nothing_said += nothing_said
        else:
            self.fits_expected += 1
            self.answered += bool(pieces)
        for piece in pieces:
            for name, ok in verdicts(request, piece, maison).items():
                self.checked[name] += 1
                self.kept[name] += ok
                if not ok:
                    self.misses.append(f"{request['id']}: {piece} breaks {name}")

    def rate(self, name: str) -> float | None:
        return round(self.kept[name] / self.checked[name], 3) if self.checked[name] else None

    def figures(self) -> dict[str, Any]:
        return {
            "budget_respected": self.rate("budget"),
            "recipient_respected": self.rate("recipient"),
            "owned_skipped": self.rate("owned"),
            "nothing_fits_said": round(self.nothing_said / self.nothing_expected, 3) if self.nothing_expected else None,
            "answered": round(self.answered / self.fits_expected, 3) if self.fits_expected else None,
            "pieces": self.checked["recipient"] or self.checked["budget"],
        }


def advisor_for(url: str, settings: LlmSettings) -> StylingAdvisor:
    engine = make_async_engine(url)
    clock = ManualClock(T0)
    return StylingAdvisor(engine, settings, clock=clock, audit=LlmAudit(engine=engine, clock=clock), salt=b"bench")


async def baseline_pieces(advisor: StylingAdvisor, request: Mapping[str, Any], wa_id: str | None) -> list[str]:
    """What the unfiltered ranking and the offline responder suggested (the old path)."""
    client = await load_client_context(advisor.engine, wa_id=wa_id, user_id=None)
    ranked = advisor.index.rank(request["text"], 5)
    cities = await _cities(advisor)
    answer = offline_answer(ranked, client, cities, request["language"])
    return answer[1] if answer else []


async def _cities(advisor: StylingAdvisor) -> dict[str, str]:
    from salon.integrations.catalog import SqlCatalog

    return await SqlCatalog(advisor.engine).boutique_names()


async def run(requests: Mapping[str, Any], maison: Maison, url: str, llm: LlmSettings | None) -> dict[str, dict[str, Tally]]:
    paths = {"offline": LlmSettings(), **({"llm": llm} if llm is not None else {})}
    tallies = {name: {lang: Tally() for lang in LANGUAGES} for name in (*paths, "baseline")}
    for name, settings in paths.items():
        advisor = advisor_for(url, settings)
        try:
            await advisor.initialize()
            for request in requests["requests"]:
                wa_id = maison.wa_ids.get(request["client"]) if request.get("client") else None
                reply = await advisor.answer(request["text"], wa_id=wa_id, user_id=None, language=request["language"])
                tallies[name][request["language"]].add(request, reply.product_ids, reply.mode == "nothing_fits", maison)
                if name == "offline":
                    pieces = await baseline_pieces(advisor, request, wa_id)
                    tallies["baseline"][request["language"]].add(request, pieces, False, maison)
        finally:
            await advisor.close()
            await advisor.engine.dispose()
    return tallies


def overall(by_language: Mapping[str, Tally]) -> Tally:
    total = Tally()
    for tally in by_language.values():
        for name in total.checked:
            total.checked[name] += tally.checked[name]
            total.kept[name] += tally.kept[name]
        total.nothing_expected += tally.nothing_expected
        total.nothing_said += tally.nothing_said
        total.fits_expected += tally.fits_expected
        total.answered += tally.answered
        total.misses.extend(tally.misses)
    return total


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def report(tallies: Mapping[str, Mapping[str, Tally]], count: int) -> dict[str, Any]:
    print(f"{count} styling requests; share of suggested pieces respecting each constraint (%)")
    print(f"  {'path':10} {'lang':4} {'budget':>7} {'recipient':>9} {'owned':>7} {'nothing':>8} {'answered':>8} {'pieces':>6}")
    figures: dict[str, dict[str, Any]] = {}
    for name, by_language in tallies.items():
        for lang, tally in [*by_language.items(), ("all", overall(by_language))]:
            f = tally.figures()
            print(f"  {name:10} {lang:4} {_pct(f['budget_respected']):>7} {_pct(f['recipient_respected']):>9}"
                  f" {_pct(f['owned_skipped']):>7} {_pct(f['nothing_fits_said']):>8} {_pct(f['answered']):>8}"
                  f" {f['pieces']:>6}")
        figures[name] = overall(by_language).figures()
        for miss in overall(by_language).misses[:12]:
            print(f"    {name} miss: {miss}")
    result: dict[str, Any] = {
        "budget_respected": figures["offline"]["budget_respected"],
        "recipient_respected": figures["offline"]["recipient_respected"],
        "owned_skipped": figures["offline"]["owned_skipped"],
        "baseline_budget_respected": figures["baseline"]["budget_respected"],
        "baseline_recipient_respected": figures["baseline"]["recipient_respected"],
        "baseline_owned_skipped": figures["baseline"]["owned_skipped"],
        "nothing_fits_said": figures["offline"]["nothing_fits_said"],
        "answered": figures["offline"]["answered"],
        "requests": count,
    }
    if "llm" in figures:
        result.update({f"llm_{k}": figures["llm"][k] for k in ("budget_respected", "recipient_respected",
                                                                 "owned_skipped")})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=Path, default=REQUESTS)
    args = parser.parse_args()
    requests = load_requests(args.requests)
    maison = load_maison(requests)
    settings = load_llm_settings()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'salon.db'}"
        seed_database(url, MAISON)
        tallies = asyncio.run(run(requests, maison, url, settings if settings.enabled else None))
    if not settings.enabled:
        print("no model configured (SALON_LLM_BASE_URL, SALON_LLM_MODEL): offline responder only")
    print(json.dumps(report(tallies, len(requests["requests"]))))


if __name__ == "__main__":
    main()
