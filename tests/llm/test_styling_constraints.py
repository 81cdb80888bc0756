"""Styling suggestions honour what the client said: her budget, for whom, what she owns.

Every request of ``styling_requests.yml`` (67, in English, French and Italian, from
known clients with purchases and from people the book does not know) is put to the
styling turn on the seeded maison; each piece suggested is checked against the catalog's
data files (the price in the currency of her budget, who the piece is cut for) and the
pieces she owns, never against the code's own reading of her words. Then: the parsing
in each language, the "nothing fits" answer, owned pieces, place names ("Capri"), the
guardrails and what the model is given.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from salon.clock import ManualClock
from salon.config import PROJECT_ROOT
from salon.integrations.catalog import ProductFacts
from salon.integrations.seed import seed_database
from salon.llm.audit import LlmAudit
from salon.llm.config import LlmSettings
from salon.llm.constraints import Budget, Fit, Recipient, Size, parse_constraints, wearers
from salon.llm.context import ClientContext, load_client_context
from salon.llm.guardrails import check
from salon.llm.prompt import system_rules
from salon.llm.responder import StylingAdvisor, StylingReply
from salon.llm.retrieval import CatalogIndex
from salon.storage.db import make_async_engine
from tests.llm.scripted_llm import ScriptedLlm, Step, running_llm

HERE = Path(__file__).parent
MAISON = PROJECT_ROOT / "data" / "maison"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
CITIES = {"paris": "Paris", "london": "London", "milan": "Milan"}
CLAIRE = "33600000001"  # C-001, Paris, Sophie; owns the Étoile scarf, a card holder on order …
JULIEN = "33600000005"  # C-005: owns the Zéphyr wallet, refused personalisation
MADISON = "13105550177"  # C-029, London client writing in English; owns the Halo ring
WOMEN_TITLES = {"Ms", "Mrs", "Miss", "Mme", "Mlle"}
MEN_TITLES = {"Mr", "M."}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


SET = _yaml(HERE / "styling_requests.yml")
REQUESTS: list[dict[str, Any]] = SET["requests"]
FIT: dict[str, str] = SET["fit"]
PRODUCTS = {p["id"]: p for p in _yaml(MAISON / "products.yml")["products"]}
CLIENTS = {c["id"]: c for c in _yaml(MAISON / "clients.yml")["clients"]}
ORDERS = _yaml(MAISON / "orders.yml")["orders"]
BOUTIQUE_CURRENCY = {b["id"]: b["currency"] for b in _yaml(MAISON / "boutiques.yml")["boutiques"]}


# --------------------------------------------------------------------------- the checks
def applied_currency(request: dict[str, Any]) -> str:
    """The currency of her budget: the one she named, else her home boutique's."""
    said = (request.get("budget") or {}).get("currency")
    if said:
        return str(said)
    client = request.get("client")
    return BOUTIQUE_CURRENCY[CLIENTS[client]["home_boutique"]] if client else "EUR"


def within(price: int, budget: dict[str, Any]) -> bool:
    """The set's budget semantics (its header), nothing of the code's."""
    kind, amount = budget["kind"], budget["amount"]
    return {
        "under": price < amount,
        "max": price <= amount,
        "around": 0.7 * amount <= price <= 1.1 * amount,
        "between": amount <= price <= budget.get("upper", amount),
        "min": price >= amount,
    }[kind]


def suits(piece: str, recipient: str) -> bool:
    fit = FIT[piece]
    if recipient == "child":
        return False
    if recipient == "anyone":
        return fit == "anyone"
    if recipient in {"woman", "man"}:
        return fit == "anyone" or fit == {"woman": "women", "man": "men"}[recipient]
    return True


def broken(request: dict[str, Any], piece: str) -> list[str]:
    """Every constraint of ``request`` the suggested ``piece`` breaks."""
    out: list[str] = []
    if request.get("budget"):
        price = PRODUCTS[piece]["price"][applied_currency(request).casefold()]
        if not within(price, request["budget"]):
            out.append(f"budget ({price} {applied_currency(request)})")
    if not suits(piece, request["recipient"]):
        out.append(f"recipient ({FIT[piece]} for {request['recipient']})")
    if piece in request.get("owned", []):
        out.append("owned")
    if request.get("category") and PRODUCTS[piece]["category"] != request["category"]:
        out.append(f"category ({PRODUCTS[piece]['category']})")
    return out


def owned_in_the_data(client_id: str) -> set[str]:
    """What the client bought or has on order, read from clients.yml and orders.yml."""
    client = CLIENTS[client_id]
    bought = {p["product_id"] for p in client.get("purchases", [])}
    ordered = {item["product_id"] for order in ORDERS if order["client"] == client_id
               and order["status"] not in {"cancelled", "returned"} for item in order["items"]}
    return bought | ordered


def personalisation(client_id: str) -> bool:
    latest: dict[str, bool] = {}
    for consent in CLIENTS[client_id].get("consents", []):
        latest[consent["purpose"]] = consent["granted"]
    return latest.get("personalisation", False)


def wa_id(request: dict[str, Any]) -> str | None:
    client = request.get("client")
    return CLIENTS[client]["whatsapp"].lstrip("+") if client else None


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("constraints") / "salon.db"
    seed_database(f"sqlite:///{path}", MAISON)
    return path


def copy_of(seeded: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(seeded, folder / "salon.db"))


@asynccontextmanager
async def advisor_for(seeded: Path, folder: Path, llm: ScriptedLlm | None = None) -> AsyncIterator[StylingAdvisor]:
    engine = make_async_engine(f"sqlite:///{copy_of(seeded, folder)}")
    settings = LlmSettings(base_url=llm.base_url if llm else None, model="stylist" if llm else None,
                           api_key="sk-test-key")
    clock = ManualClock(T0)
    advisor = StylingAdvisor(engine, settings, clock=clock, audit=LlmAudit(engine=engine, clock=clock),
                             salt=b"test-salt")
    try:
        yield advisor
    finally:
        await advisor.close()
        await engine.dispose()


async def ask(advisor: StylingAdvisor, text: str, wa: str | None, language: str) -> StylingReply:
    return await advisor.answer(text, wa_id=wa, user_id=None, language=language)


# --------------------------------------------------------------------------- the set itself
def test_the_set_is_large_varied_and_true_to_the_client_book() -> None:
    assert len(REQUESTS) >= 60 and len({r["id"] for r in REQUESTS}) == len(REQUESTS)
    for language in ("en", "fr", "it"):
        assert sum(r["language"] == language for r in REQUESTS) >= 20, language
    known = [r for r in REQUESTS if r.get("client")]
    assert sum(bool(r.get("owned")) for r in known) >= 30 and sum(not r.get("client") for r in REQUESTS) >= 15
    assert set(FIT) == set(PRODUCTS) and set(FIT.values()) <= {"women", "men", "anyone"}
    for request in known:
        client = request["client"]
        expected = owned_in_the_data(client) - set(request.get("asks_for", [])) if personalisation(client) else set()
        assert set(request.get("owned", [])) == expected, request["id"]
        assert set(request.get("asks_for", [])) <= owned_in_the_data(client), request["id"]
    assert all(r["recipient"] in {"woman", "man", "anyone", "child", "any"} for r in REQUESTS)


def test_who_a_piece_is_cut_for_is_read_as_the_set_reads_the_catalog(catalog: list[ProductFacts]) -> None:
    words = {"women": {"woman"}, "men": {"man"}, "anyone": {"woman", "man"}}
    assert {p.id: set(wearers(p)) for p in catalog} == {pid: words[fit] for pid, fit in FIT.items()}


# --------------------------------------------------------------------------- every request
async def test_every_suggestion_respects_every_constraint(seeded: Path, tmp_path: Path) -> None:
    failures: list[str] = []
    suggested = 0
    async with advisor_for(seeded, tmp_path) as advisor:
        for request in REQUESTS:
            reply = await ask(advisor, request["text"], wa_id(request), request["language"])
            if request.get("nothing_fits"):
                if (reply.mode, reply.product_ids) != ("nothing_fits", ()):
                    failures.append(f"{request['id']}: expected nothing to fit, got {reply.product_ids}")
                continue
            if reply.mode != "offline" or not reply.product_ids:
                failures.append(f"{request['id']}: expected a suggestion, got {reply.mode}: {reply.text}")
            for piece in reply.product_ids:
                suggested += 1
                failures.extend(f"{request['id']}: {piece} breaks {what}" for what in broken(request, piece))
                if PRODUCTS[piece]["name"] not in (reply.text or ""):
                    failures.append(f"{request['id']}: {piece} is not named in the answer")
    assert not failures, "\n".join(failures)
    assert suggested >= 60


async def test_owned_pieces_are_suggested_when_she_asks_for_them_again(seeded: Path, tmp_path: Path) -> None:
    async with advisor_for(seeded, tmp_path) as advisor:
        for request in (r for r in REQUESTS if r.get("asks_for")):
            reply = await ask(advisor, request["text"], wa_id(request), request["language"])
            assert set(request["asks_for"]) & set(reply.product_ids), request["id"]


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(("text", "language", "budget"), [
    ("a birthday gift for my husband, under 800 euros", "en", Budget("under", 800, None, "EUR")),
    ("around £2k for my wife", "en", Budget("around", 2000, None, "GBP")),
    ("something nice, £1,200 max", "en", Budget("max", 1200, None, "GBP")),
    ("between 300 and 600, nothing flashy", "en", Budget("between", 300, 600, None)),
    ("I'd like to spend about a thousand pounds", "en", Budget("around", 1000, None, "GBP")),
    ("no more than €3,500 please", "en", Budget("max", 3500, None, "EUR")),
    ("at least 5k", "en", Budget("min", 5000, None, None)),
    ("moins de 500 € pour ma mère", "fr", Budget("under", 500, None, "EUR")),
    ("entre 300 et 600", "fr", Budget("between", 300, 600, None)),
    ("jusqu'à 1 000 €, pas plus", "fr", Budget("max", 1000, None, "EUR")),
    ("un budget de deux mille euros", "fr", Budget("max", 2000, None, "EUR")),
    ("dans les 400 livres", "fr", Budget("around", 400, None, "GBP")),
    ("massimo 1.500 euro", "it", Budget("max", 1500, None, "EUR")),
    ("sui 2.000 euro per mia madre", "it", Budget("around", 2000, None, "EUR")),
    ("tra i 300 e i 600 euro", "it", Budget("between", 300, 600, "EUR")),
    ("non più di 1,5 mila euro", "it", Budget("max", 1500, None, "EUR")),
    ("meno di 800 sterline", "it", Budget("under", 800, None, "GBP")),
    # a negated minimum is a maximum; shared thousands; words for "about a hundred"
    ("I don't want to spend more than 1000 euros", "en", Budget("max", 1000, None, "EUR")),
    ("he collects watches, say 10-12k euros", "en", Budget("between", 10000, 12000, "EUR")),
    ("I want to treat myself, 20k budget", "en", Budget("max", 20000, None, None)),
    ("une montre entre 8 et 10 000 €", "fr", Budget("between", 8000, 10000, "EUR")),
    ("un cadeau pour mon patron, une centaine d'euros", "fr", Budget("around", 100, None, "EUR")),
    ("Porto la 44, massimo 3.000 euro", "it", Budget("max", 3000, None, "EUR")),
])
def test_budgets_in_each_language(text: str, language: str, budget: Budget) -> None:
    parsed = parse_constraints(text, language)
    assert parsed.budget == budget
    assert parsed.currency == budget.currency


@pytest.mark.parametrize(("text", "language"), [
    ("a dress in size 38 for her 50th birthday", "en"),
    ("the Méridien 38 or the Horizon GMT?", "en"),
    ("pour mon fils de 12 ans", "fr"),
    ("une montre de 38 mm", "fr"),
    ("per i 40 anni di mia moglie", "it"),
    ("ho pagato 3.400 euro per la mia Aurore", "it"),
])
def test_numbers_that_are_no_budget(text: str, language: str) -> None:
    assert parse_constraints(text, language).budget is None


@pytest.mark.parametrize(("text", "language", "recipient"), [
    ("a birthday gift for my husband", "en", Recipient("husband", "man")),
    ("something for my mother's 70th", "en", Recipient("mother", "woman")),
    ("a present for him", "en", Recipient("man", "man")),
    ("a gift for a friend", "en", Recipient("friend", None)),
    ("what would suit my 8 year old daughter?", "en", Recipient("daughter", "woman", True)),
    ("is there a men's watch?", "en", Recipient("man", "man")),
    ("un cadeau pour ma femme", "fr", Recipient("wife", "woman")),
    ("pour l'anniversaire de mon père", "fr", Recipient("father", "man")),
    ("à offrir à ma meilleure amie", "fr", Recipient("friend", "woman")),
    ("pour ma petite-fille", "fr", Recipient("granddaughter", "woman")),
    ("pour ma petite fille de 4 ans", "fr", Recipient("daughter", "woman", True)),
    ("un regalo per mio marito", "it", Recipient("husband", "man")),
    ("il compleanno di mia sorella", "it", Recipient("sister", "woman")),
    ("un orologio da uomo", "it", Recipient("man", "man")),
    ("per un bambino", "it", Recipient("child", None, True)),
    ("My husband turns 60 next week - any ideas?", "en", Recipient("husband", "man")),
    ("something for a 15 year old girl", "en", Recipient("girl", "woman", False)),
    ("faire plaisir à mon épouse pour notre anniversaire de mariage", "fr", Recipient("wife", "woman")),
    ("per mio figlio che compie 18 anni", "it", Recipient("son", "man")),
])
def test_for_whom_in_each_language(text: str, language: str, recipient: Recipient) -> None:
    assert parse_constraints(text, language).recipients == (recipient,)


@pytest.mark.parametrize(("text", "language"), [
    ("what should I wear to my sister's wedding?", "en"),
    ("a dress like my mother's", "en"),
    ("que porter au mariage de ma sœur ?", "fr"),
    ("cosa indosso al matrimonio di mia cugina?", "it"),
])
def test_a_relation_is_not_always_the_recipient(text: str, language: str) -> None:
    parsed = parse_constraints(text, language)
    assert parsed.recipients == () and parsed.for_whom == (Recipient("self"),)


def test_occasion_season_size_colour_kind_and_places() -> None:
    english = parse_constraints("a black leather bag for a summer wedding on the Amalfi coast, I'm a size 38", "en")
    assert english.kinds == ("bag",) and [c.family for c in english.colours] == ["black"]
    assert english.occasions == ("wedding",) and english.season == "summer"
    assert english.size == Size("38", "garment") and english.places == ("Amalfi",)
    assert "amalfi" not in english.query and "38" not in english.query
    french = parse_constraints("une bague en or pour moi, taille de bague 52, pour une soirée d'hiver", "fr")
    assert french.kinds == ("ring",) and [c.family for c in french.colours] == ["gold"]
    assert french.size == Size("52", "ring") and french.season == "winter" and "evening" in french.occasions
    italian = parse_constraints("una borsa nera per una cena a Portofino in primavera", "it")
    assert italian.kinds == ("bag",) and [c.word for c in italian.colours] == ["nera"]
    assert italian.places == ("Portofino",) and italian.season == "spring" and italian.occasions == ("dinner",)
    # Her own pieces, and what she pairs with, are no constraint and leave the query.
    own = parse_constraints("what would go with my navy blazer and a grey coat?", "en")
    assert own.kinds == () and own.colours == () and "blazer" not in own.query
    assert parse_constraints("a dress for a black-tie gala", "en").colours == ()
    assert parse_constraints("I'd like a bag, not black please", "en").colours == ()
    # A birthday of her own is no gift; someone else's is.
    assert parse_constraints("what should I wear for my birthday dinner?", "en").for_whom == (Recipient("self"),)
    assert parse_constraints("Pour la fête des mères, un bijou", "fr").for_whom == (Recipient("someone"),)


def test_a_place_is_told_from_a_pieces_name() -> None:
    for text, language in (("a wedding in Capri", "en"), ("un mariage à Capri", "fr"), ("un matrimonio a Capri", "it"),
                           ("a weekend on the Riviera", "en"), ("sur la Riviera", "fr"), ("in Riviera ligure", "it")):
        parsed = parse_constraints(text, language)
        assert parsed.places and parsed.places[0] in {"Capri", "Riviera"}, text
    for text, language in (("is the Capri shirt still in stock?", "en"), ("la chemise Capri en bleu", "fr"),
                           ("la camicia Capri in azzurro", "it"), ("the Riviera coat in camel", "en")):
        parsed = parse_constraints(text, language)
        assert parsed.places == () and ("capri" in parsed.query or "riviera" in parsed.query), text


# --------------------------------------------------------------------------- nothing fits
async def test_when_nothing_fits_the_answer_says_so_and_offers_the_advisor(seeded: Path, tmp_path: Path) -> None:
    async with advisor_for(seeded, tmp_path) as advisor:
        reply = await ask(advisor, "a watch for my husband, under 800 euros", CLAIRE, "en")
        assert (reply.mode, reply.verdict, reply.product_ids) == ("nothing_fits", "nothing_fits", ())
        assert reply.text == ("With pleasure, Ms Laurent. I'm afraid we have nothing of that kind under €800 for a "
                              "man at the moment. Shall I ask Sophie, your client advisor, to look into it with you?")
        assert [b["payload"] for b in reply.response()["buttons"]] == ["/affirm", "/deny"]
        french = await ask(advisor, "un cadeau pour ma fille de 6 ans", None, "fr")
        # Bad news does not open with "with pleasure" in French or Italian.
        assert french.text == ("Merci. Je crains que nous n'ayons rien pour un enfant en ce moment. "
                               "Souhaitez-vous que je demande à l'un de nos conseillers d'y réfléchir avec vous\u202f?")
        italian = await ask(advisor, "Un anello per mio marito, massimo 3.000 euro", None, "it")
        assert italian.text == ("Grazie. Purtroppo al momento non abbiamo nulla di questo tipo entro 3.000\u00a0€ "
                                "per un uomo. Desidera che chieda a uno dei nostri consulenti di cercare insieme a "
                                "Lei un'alternativa?")
        london = await ask(advisor, "a small gift for my colleague, £100 max", MADISON, "en")
        assert "up to £100" in (london.text or "") and "James" in (london.text or "")
        rows = await advisor.audit.rows()
        assert [r["verdict"] for r in rows] == ["nothing_fits"] * 4 and all(r["retrieved_ids"] == [] for r in rows)
        names = [p.name for p in advisor.index.products]
        for text in (reply.text, french.text, italian.text, london.text):
            assert not any(name in (text or "") for name in names), text


async def test_no_model_is_asked_when_nothing_fits(seeded: Path, tmp_path: Path) -> None:
    async with running_llm([Step("The Halo ring, at €12,500, would be perfect.")] * 2) as llm, \
            advisor_for(seeded, tmp_path, llm) as advisor:
        reply = await ask(advisor, "a ring for my husband under 800 euros", CLAIRE, "en")
        assert reply.mode == "nothing_fits" and llm.requests == []


# --------------------------------------------------------------------------- owned pieces
async def test_owned_pieces_are_skipped_unless_she_asks_for_them(seeded: Path, tmp_path: Path) -> None:
    async with advisor_for(seeded, tmp_path) as advisor:
        # Claire owns the Étoile silk scarf, the only scarf: nothing else is put forward.
        scarf = await ask(advisor, "un foulard en soie pour moi", CLAIRE, "fr")
        assert scarf.mode == "nothing_fits" and "que vous n'ayez déjà" in (scarf.text or "")
        again = await ask(advisor, "le même foulard Étoile que le mien, pour ma sœur", CLAIRE, "fr")
        assert again.product_ids == ("RW-005",)
        # Pairing with her own piece is not asking for it again.
        pairing = await ask(advisor, "what would go with my Étoile silk scarf?", CLAIRE, "en")
        assert "RW-005" not in pairing.product_ids
        # A card holder she ordered (delivered) and the coat on its way count as hers.
        gift = await ask(advisor, "a small leather gift for my husband, under 500 euros", CLAIRE, "en")
        assert "LG-006" not in gift.product_ids
        # Without personalisation consent, her purchases are not read at all.
        julien = await ask(advisor, "un portefeuille pour moi, moins de 1 000 €", JULIEN, "fr")
        assert "LG-010" in julien.product_ids


# --------------------------------------------------------------------------- place names
PLACE_QUESTIONS = [
    ("What should I wear to a wedding in Capri?", "en"),
    ("a shirt for a wedding in Capri", "en"),
    ("something for a weekend on the Riviera, under €6,000", "en"),
    ("a dress for a summer wedding on the Amalfi coast", "en"),
    ("que porter pour un dîner à Portofino ?", "fr"),
    ("un cadeau pour mon mari, nous partons à Capri", "fr"),
    ("cosa indossare a un matrimonio a Capri?", "it"),
    ("un regalo per mia moglie per un weekend in Riviera", "it"),
]


@pytest.mark.parametrize(("text", "language"), PLACE_QUESTIONS)
def test_a_place_name_is_no_reason_to_rank_a_piece(index: CatalogIndex, catalog: list[ProductFacts],
                                                   text: str, language: str) -> None:
    claire = ClientContext(client_id="C-001", title="Ms", last_name="Laurent")

    def ranked(words: str) -> list[str]:
        fit = Fit.of(parse_constraints(words, language), claire, catalog)
        return [r.product.id for r in index.rank_fitting(fit, 5)]

    for place in ("Capri", "Riviera", "Amalfi", "Portofino"):
        if place in text:
            assert ranked(text) == ranked(text.replace(place, "Mykonos")), text


async def test_the_capri_shirt_is_not_offered_for_a_wedding_in_capri(seeded: Path, tmp_path: Path,
                                                                     index: CatalogIndex) -> None:
    question = "What should I wear to a wedding in Capri?"
    assert index.rank(question, 1)[0].product.id == "RW-002"  # the raw ranking: the name alone
    async with advisor_for(seeded, tmp_path) as advisor:
        for text, language in ((question, "en"), ("Que porter pour un mariage à Capri ?", "fr"),
                               ("Cosa indossare per un matrimonio a Capri?", "it")):
            reply = await ask(advisor, text, MADISON, language)
            assert reply.mode == "offline" and "RW-002" not in reply.product_ids, text
            assert "Capri linen shirt" not in (reply.text or "")
        # Named as a piece, it is found.
        named = await ask(advisor, "la camicia Capri è disponibile in azzurro?", MADISON, "it")
        assert named.product_ids[:1] == ("RW-002",)


# --------------------------------------------------------------------------- guardrails
def test_the_guardrails_reject_a_piece_over_budget_unfit_or_owned(catalog: list[ProductFacts]) -> None:
    by_id = {p.id: p for p in catalog}
    client = ClientContext(client_id="C-001", title="Ms", first_name="Claire", last_name="Laurent",
                           home_city="Paris", advisor_first_name="Sophie", personalisation=True,
                           owned=frozenset({"RW-005", "LG-006"}))
    fit = Fit.of(parse_constraints("a birthday gift for my husband, under 800 euros", "en"), client, catalog)

    def kinds(answer: str, *retrieved: str) -> list[str]:
        return check(answer, [by_id[i] for i in retrieved], catalog, CITIES, client, system_rules(), fit).kinds

    assert kinds("The Halo ring, at €12,500, would be a beautiful gift.", "JW-002") == ["budget", "recipient"]
    assert "budget" in kinds("The Halo ring, at €12,500, would be a beautiful gift.", "LG-010")
    assert kinds("The Amalfi silk dress would be lovely for him.", "RW-006") == ["budget", "recipient"]
    assert kinds("The Étoile silk scarf would be lovely.", "LG-010") == ["owned"]
    assert kinds("Within your budget of €800, the Zéphyr wallet, at €780, would go well with your "
                 "Étoile silk scarf. Shall I ask Sophie to set it aside?", "LG-010") == []
    # Without constraints the old checks are unchanged.
    assert check("The Zéphyr wallet, at €780.", [by_id["LG-010"]], catalog, CITIES, client).ok


def test_the_offline_nothing_fits_answer_passes_the_guardrails(catalog: list[ProductFacts]) -> None:
    from salon.llm.offline import nothing_fits_answer

    client = ClientContext(client_id="C-013", title="Ms", last_name="Ashworth", home_city="London",
                           advisor_first_name="James")
    for text, language in (("a ring for my husband, up to £2,000", "en"), ("une bague pour mon mari, 2 000 £ max", "fr"),
                           ("un anello per mio marito, massimo 2.000 sterline", "it")):
        fit = Fit.of(parse_constraints(text, language), client, catalog)
        answer = nothing_fits_answer(fit, language, of_kind=True)
        assert check(answer, [], catalog, CITIES, client, system_rules(language), fit).ok, answer


# --------------------------------------------------------------------------- the model
async def test_the_model_gets_only_fitting_pieces_and_the_request(seeded: Path, tmp_path: Path) -> None:
    over = "Avec plaisir, Madame Laurent. Le modèle Halo ring, à 12 500 €, serait un cadeau magnifique."
    async with running_llm([Step(over), Step(over)]) as llm, advisor_for(seeded, tmp_path, llm) as advisor:
        reply = await ask(advisor, "un cadeau d'anniversaire pour mon mari, moins de 800 euros", CLAIRE, "fr")
        system = llm.requests[0]["messages"][0]["content"]
        facts = json.loads(system.split("FACTS (JSON):\n", 1)[1])
        assert facts["request"]["budget"] == {"kind": "under", "amount": 800, "upper": None, "currency": "EUR"}
        assert facts["request"]["for"] == [{"relation": "husband", "gender": "man", "child": False}]
        pieces = [p["id"] for p in facts["products"]]
        assert pieces and all(p["price_eur"] < 800 for p in facts["products"])
        assert all(FIT[p] == "anyone" for p in pieces) and not set(pieces) & owned_in_the_data("C-001")
        assert "FACTS request" in system
        # The draft over budget is refused twice: the grounded offline answer goes out.
        assert (reply.mode, reply.verdict) == ("offline", "replaced")
        assert any("outside the client's budget" in p for p in reply.problems)
        assert all(PRODUCTS[p]["price"]["eur"] < 800 for p in reply.product_ids)


async def test_a_drafted_answer_reports_the_pieces_it_names(seeded: Path, tmp_path: Path) -> None:
    async with running_llm([]) as llm, advisor_for(seeded, tmp_path, llm) as advisor:
        question = "a birthday gift for my husband, under 800 euros"
        await advisor.initialize()
        claire = await load_client_context(advisor.engine, wa_id=CLAIRE, user_id=None)
        fit = Fit.of(parse_constraints(question, "en"), claire, advisor.index.products)
        first = advisor.index.rank_fitting(fit, 5)[0].product
        llm.steps.append(Step(f"With pleasure, Ms Laurent. The {first.name}, at €{first.price_eur:,}, would make "
                              "a lovely gift. Shall I ask Sophie to set it aside?"))
        reply = await ask(advisor, question, CLAIRE, "en")
        assert (reply.mode, reply.verdict, reply.product_ids) == ("llm", "pass", (first.id,))
        assert first.price_eur < 800 and FIT[first.id] == "anyone" and first.id not in owned_in_the_data("C-001")


@pytest.fixture(autouse=True)
def _no_configured_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SALON_LLM_BASE_URL", "SALON_LLM_MODEL", "SALON_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield
