"""Every answer is checked against the facts it was given before a client can see it.

:func:`check` returns the problems of a draft, each a sentence the model can act on when
it is asked to repair (see :func:`salon.llm.prompt.repair_messages`). It reads English,
French and Italian alike, whatever language was asked for: the words of each language
are its vocabulary in :mod:`salon.llm.lexicon`, nowhere else.

- ``unknown_product``: a catalog piece that was not retrieved for this turn, or a
  product-like name (``the Riviera silk blouse``, ``a Birkin bag``, ``le sac Riviera``,
  ``la borsa Riviera``) that is not in the catalog at all;
- ``price``: an amount that is not the price, in that currency, of a piece the sentence
  (or the one before it) names: ``€1,200``, ``1 200 €``, ``1.200 €``, ``1200 euro``,
  ``£950``, ``1,2 mila euro`` or spelled out (``mille euro``, ``deux mille euros``);
- ``material``: a material the piece in question is not made of (the client's own
  clothes, "your … wool blazer", "votre veste en laine", "il Suo blazer di lana", are
  theirs to describe);
- ``stock``: "available in London", "en stock", "disponibile", "last piece",
  "plus que deux", "ultimi pezzi", "sold out", "in magazzino" against units on hand;
- ``colour``: a catalog colour (Noir, Bleu Nuit …) said of a piece not made in it;
- ``promise``: discounts, sales, guarantees, free or dated delivery ("nous vous
  garantissons", "livré demain", "Le garantiamo", "consegna domani", "in omaggio");
- ``contact``: phone numbers or e-mail addresses;
- ``internal_id``: catalog ids (``RW-002``) shown to the client;
- ``other_client``: a person addressed or named by title (Ms, Madame, Signora …) who is
  not this client;
- ``leak``: the instructions repeated, or talk of prompts and rules;
- ``voice``: "As an AI", exclamation cascades, emoji runs, hype;
- ``length``: more than :data:`MAX_CHARS` characters (two or three WhatsApp sentences).

Given the client's constraints (a :class:`salon.llm.constraints.Fit`), three more:

- ``budget``: a piece named whose price, in the currency of her budget, is outside it
  (her budget's own figures, "within your €800", are not prices to check);
- ``recipient``: a piece named that is not cut for whom it is meant (a gown for her
  husband, anything for a child);
- ``owned``: a piece she already owns or has on order, suggested again (speaking of
  "your Aurore tote", "votre sac Aurore", "il Suo Amalfi silk dress" is fine).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from salon.integrations.catalog import COLOUR_FAMILIES, ProductFacts, fold
from salon.llm.constraints import Fit
from salon.llm.context import ClientContext
from salon.llm.lexicon import VOCABULARIES, merged, number_value, spelled_amount, union

__all__ = ["MAX_CHARS", "Problem", "Verdict", "check", "named_products"]

MAX_CHARS: Final = 600

_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")

# Every pattern and word list below is built from the vocabularies of
# :mod:`salon.llm.lexicon` (English, French, Italian); a draft meets all of them.
_LANGUAGES: Final = tuple(VOCABULARIES.values())
_CURRENCY: Final[dict[str, str]] = {"€": "EUR", "£": "GBP",
                                     **{word: code for v in _LANGUAGES for word, code in v.currencies.items()}}
_CURRENCY_WORDS: Final = "|".join(sorted((w for w in _CURRENCY if w.isalpha()), key=len, reverse=True))
_NUMBER = r"\d{1,3}(?:[,.\u202f\u00a0 ]\d{3})+(?:[.,]\d{2})?(?!\d)|\d+(?:[.,]\d{1,2})?(?!\d)"
# "1,2 mila euro", "3k €": thousands, in any language's word for them
_MULTIPLIER = "|".join(sorted({w for v in _LANGUAGES for w, n in v.number_words.items() if n == 1000} | {"k"},
                              key=len, reverse=True))
_MONEY = re.compile(
    rf"(?P<c1>[€£]|\b(?:eur|gbp)\b)\s?(?P<n1>{_NUMBER})(?:\s?(?P<m1>{_MULTIPLIER})\b)?"
    rf"|(?P<n2>{_NUMBER})(?:\s?(?P<m2>{_MULTIPLIER})\b)?\s?(?P<c2>[€£]|\b(?:{_CURRENCY_WORDS})\b)",
    re.IGNORECASE,
)
# A currency after words, for amounts spelled out ("mille euro", "deux mille euros").
_CURRENCY_AFTER_WORDS = re.compile(rf"(?P<c>[€£]|\b(?:{_CURRENCY_WORDS})\b)", re.IGNORECASE)
_WORD = re.compile(r"[\w'’-]+")

# material word (folded; "in pelle" is two) → words that must appear in the piece's facts
MATERIALS: Final[Mapping[str, tuple[str, ...]]] = merged("materials")

# Names come before the noun in English ("the Riviera silk blouse") ...
PRODUCT_NOUNS: Final = tuple(noun for v in _LANGUAGES if not v.noun_first for noun in v.product_nouns)
_PRODUCT_LIKE = re.compile(
    r"(?P<name>(?:[A-ZÀ-Ý][\w'’-]*\s+){1,4}(?:[a-zà-ÿ-]+\s+){0,2}(?:" + "|".join(PRODUCT_NOUNS) + r"))\b"
)
# ... and after it in French and Italian ("le sac Riviera", "la borsa Riviera"): each noun
# with the name words or categories of the catalog's pieces of that kind.
_KINDS: Final[dict[str, tuple[str, ...]]] = {
    fold(noun): kinds for v in _LANGUAGES if v.noun_first for noun, kinds in v.product_nouns.items()
}
_NOUN_FIRST = re.compile(
    r"(?<![\w-])(?P<noun>(?i:"
    + "|".join(re.escape(noun).replace("'", "['’]").replace(r"\ ", r"\s+")
               for noun in sorted({n for v in _LANGUAGES if v.noun_first for n in v.product_nouns},
                                  key=len, reverse=True))
    + r"))[ \u00a0]+(?P<name>[A-ZÀ-Ý][\w'’-]*(?:[ \u00a0]+[A-ZÀ-Ý][\w'’-]*){0,3})"
)
_NEVER_NAMES: Final = frozenset({"maison", "solenne"}).union(*(v.articles for v in _LANGUAGES))
_POSSESSIVES: Final = frozenset().union(*(v.possessives for v in _LANGUAGES))

_PROMISE = union(p for v in _LANGUAGES for p in v.promises)
_CONTACT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ()./-]{7,}\d")
_VOICE = union(p for v in _LANGUAGES for p in v.voice)
_LEAK = union(p for v in _LANGUAGES for p in v.leak)
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")


def _title(title: str) -> str:
    """A title as a pattern; a word title ("Signora") also in lower case."""
    if title.isalpha() and len(title) > 3:
        return f"[{title[0]}{title[0].lower()}]{re.escape(title[1:])}"
    return re.escape(title)


_TITLE = re.compile(
    r"(?<!\w)(?:" + "|".join(_title(t) for t in sorted({t for v in _LANGUAGES for t in v.titles}, key=len, reverse=True))
    + r")\s+([A-ZÀ-Ý][\w'’-]+)"
)

_CITIES: Final = {word: city for v in _LANGUAGES for word, city in v.cities.items()}
_LAST_PIECE = union(p for v in _LANGUAGES for p in v.last_piece)
_FEW_LEFT = union(p for v in _LANGUAGES for p in v.few_left)
_NOT_AVAILABLE = union(p for v in _LANGUAGES for p in v.not_available)
_AVAILABLE = union(p for v in _LANGUAGES for p in v.available)
_NEGATIONS: Final = frozenset().union(*(v.negations for v in _LANGUAGES))
FEW_PIECES: Final = 3
"""The most units "the last few pieces" (without a number) may say of a boutique."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an answer: its kind (``voice``, ``leak``, ``price`` …) and a
    sentence that tells the model what to correct.
    """

    kind: str
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`check` found in an answer; ``ok`` when it found nothing."""

    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def kinds(self) -> list[str]:
        return sorted({p.kind for p in self.problems})

    def details(self) -> list[str]:
        return [p.detail for p in self.problems]


def _amount(raw: str, multiplier: str | None = None) -> int | None:
    text = raw.replace("\u202f", " ").replace("\u00a0", " ").strip()
    if multiplier:  # "1,2 mila", "3k": a decimal number of thousands
        plain = text.replace(" ", "").replace(",", ".")
        if re.fullmatch(r"\d+(?:\.\d+)?", plain):
            return round(float(plain) * 1000)
        return None
    text = re.sub(r"[.,]\d{2}$", "", text)
    digits = re.sub(r"[ ,.]", "", text)
    return int(digits) if digits.isdigit() else None


def _amounts(sentence: str) -> list[tuple[str, str, int | None]]:
    """Every amount of money in ``sentence``: (as written, currency, value), in digits
    or spelled out before a currency word.
    """
    found: list[tuple[str, str, int | None]] = []
    spans: list[tuple[int, int]] = []
    for match in _MONEY.finditer(sentence):
        symbol = (match.group("c1") or match.group("c2") or "").casefold()
        multiplier = match.group("m1") or match.group("m2")
        value = _amount(match.group("n1") or match.group("n2") or "", multiplier)
        found.append((match.group(0).strip(), _CURRENCY.get(symbol, "EUR"), value))
        spans.append(match.span())
    for match in _CURRENCY_AFTER_WORDS.finditer(sentence):
        if any(start <= match.start() < end for start, end in spans):
            continue
        words = _WORD.findall(sentence[:match.start()])[-8:]
        spelled = spelled_amount(words)
        if spelled is None:
            continue
        value, taken = spelled
        quoted = " ".join([*words[len(words) - taken:], match.group("c")])
        found.append((quoted, _CURRENCY.get(match.group("c").casefold(), "EUR"), value))
    return found


def _colour_words() -> set[str]:
    words: set[str] = set()
    for family, members in COLOUR_FAMILIES.items():
        words.update(fold(family).split())
        for member in members:
            words.update(fold(member).split())
    return words


_COLOUR_WORDS: Final = _colour_words()


class _Names:
    """How each catalog product may be mentioned: its full name, or its distinctive first
    word (Aurore, Céleste …) written with a capital letter.
    """

    def __init__(self, catalog: Iterable[ProductFacts]) -> None:
        self.full: dict[str, str] = {}
        self.words: dict[str, set[str]] = {}
        self.kinds: dict[str, set[str]] = {}
        first_words: dict[str, list[str]] = {}
        for product in catalog:
            self.full[fold(product.name)] = product.id
            self.words[product.id] = set(fold(product.name).split())
            self.kinds[product.id] = {*self.words[product.id], product.category}
            first_words.setdefault(product.name.split()[0], []).append(product.id)
        # First words that are also places or ordinary words name no piece on their own.
        generic = {"Eau", "Nuit", "Jardin", "Fleur", "Bois", "Ambre", "Sable", "Capri", "Alpine",
                   "Riviera", "Portofino", "Amalfi", "Halo", "Perle", "Lune", "Soleil", "Tailleur"}
        # A first word two pieces share (Méridien) cannot tell which one is meant.
        self.first = {word: ids[0] for word, ids in first_words.items() if word not in generic and len(ids) == 1}

    def mentioned(self, sentence: str) -> set[str]:
        """The pieces ``sentence`` names: by full name, by distinctive first word, or by a
        French or Italian noun and a name only one piece of that kind bears ("la camicia
        Capri").
        """
        folded = f" {fold(sentence)} "
        ids = {pid for name, pid in self.full.items() if f" {name} " in folded}
        for word, pid in self.first.items():
            if re.search(rf"\b{re.escape(word)}\b", sentence):
                ids.add(pid)
        for match in _NOUN_FIRST.finditer(sentence):
            of_kind = self.of_kind(match.group("noun"), _distinctive(match.group("name")))
            if len(of_kind) == 1:
                ids |= of_kind
        return ids

    def of_kind(self, noun: str, words: Sequence[str]) -> set[str]:
        """Products of the kind ``noun`` says ("sac", "borsa") whose name holds ``words``."""
        kinds = set(_KINDS.get(fold(noun), ()))
        return {pid for pid in self.matching(" ".join(words)) if self.kinds[pid] & kinds}

    def matching(self, phrase: str) -> set[str]:
        """Products whose name holds every word of ``phrase`` ("Amalfi dress")."""
        wanted = {w for w in fold(phrase).split() if w not in _NEVER_NAMES}
        return {pid for pid, words in self.words.items() if wanted and wanted <= words}


def _distinctive(name: str) -> list[str]:
    """The words of a name after a noun that could name a piece: not articles, colours,
    materials or cities ("la borsa Noir" names no piece).
    """
    return [w for w in name.split() if fold(w) not in _NEVER_NAMES and fold(w) not in _COLOUR_WORDS
            and fold(w) not in MATERIALS and fold(w) not in _CITIES]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text) if s.strip()]


def check(
    answer: str,
    retrieved: Sequence[ProductFacts],
    catalog: Sequence[ProductFacts],
    cities: Mapping[str, str],
    client: ClientContext,
    rules: str = "",
    fit: Fit | None = None,
) -> Verdict:
    """The problems of ``answer`` given what was retrieved for this turn and, with
    ``fit``, the client's constraints.
    """
    allowed = {p.id: p for p in retrieved}
    by_id = {p.id: p for p in catalog}
    owned = {purchase.product_id for purchase in client.purchases} | set(client.owned)
    known = set(allowed) | owned
    budget_figures = _budget_figures(fit)
    names = _Names(catalog)
    catalog_colours = sorted({c for p in catalog for c in p.colours if c[:1].isupper()}, key=len, reverse=True)

    problems = _voice_problems(answer, rules)
    problems.extend(_disclosure_problems(answer, by_id, client))
    previous: set[str] = set()
    for sentence in _sentences(answer):
        named = names.mentioned(sentence)
        problems.extend(_naming_problems(sentence, named, names, by_id, known))
        problems.extend(_constraint_problems(sentence, named, by_id, set(allowed), owned, fit))
        context_ids = {pid for pid in named if pid in allowed} or previous
        context = [allowed[pid] for pid in sorted(context_ids)]
        problems.extend(_price_problems(sentence, context, retrieved, budget_figures))
        problems.extend(_material_problems(sentence, context))
        problems.extend(_stock_problems(sentence, context, cities))
        problems.extend(_colour_problems(sentence, context, catalog_colours))
        previous = context_ids
    return Verdict(tuple(problems))


def _voice_problems(answer: str, rules: str) -> list[Problem]:
    """Length, tone, leaked instructions and unsupported promises in the whole answer."""
    problems: list[Problem] = []
    if len(answer) > MAX_CHARS:
        problems.append(Problem("length", f"it is {len(answer)} characters long; WhatsApp answers stay under {MAX_CHARS}"))
    if _VOICE.search(answer):
        problems.append(Problem("voice", "it talks about being an AI or uses hype; speak as the maison's assistant"))
    if "!!" in answer or answer.count("!") > 1:
        problems.append(Problem("voice", "it uses several exclamation marks; the maison's voice is calm"))
    if len(_EMOJI.findall(answer)) > 1:
        problems.append(Problem("voice", "it uses several emoji"))
    if _LEAK.search(answer) or _repeats_rules(answer, rules):
        problems.append(Problem("leak", "it talks about its instructions; never mention or repeat them"))
    for match in _PROMISE.finditer(answer):
        problems.append(Problem("promise", f"it promises '{match.group(0)}', which the facts do not support"))
    return problems


def _disclosure_problems(
    answer: str, by_id: Mapping[str, ProductFacts], client: ClientContext
) -> list[Problem]:
    """Internal references, contact details and other clients' names in the whole answer."""
    problems: list[Problem] = []
    for pid in sorted(by_id):
        if re.search(rf"(?<!\w){re.escape(pid)}(?!\w)", answer, re.IGNORECASE):
            problems.append(Problem("internal_id", f"it shows the internal reference {pid}; name the piece instead"))
    for match in _CONTACT.finditer(answer):
        problems.append(Problem("contact", f"it gives contact details ('{match.group(0)}'); offer the advisor by name instead"))
    for match in _TITLE.finditer(answer):
        if not client.last_name or fold(match.group(1)) != fold(client.last_name):
            problems.append(Problem("other_client", f"it addresses or names '{match.group(0)}', who is not this client"))
    return problems


def _naming_problems(
    sentence: str,
    named: set[str],
    names: _Names,
    by_id: Mapping[str, ProductFacts],
    known: set[str],
) -> list[Problem]:
    """Pieces ``sentence`` names that were neither retrieved nor bought (``known``), and
    product-like names that are not in the catalog.
    """
    problems: list[Problem] = []
    for pid in sorted(named):
        if pid not in known:
            problems.append(Problem("unknown_product", f"it names the {by_id[pid].name}, which is not among the pieces retrieved for this question"))
    for match in _PRODUCT_LIKE.finditer(sentence):
        phrase = match.group("name")
        words = phrase.split()
        capitals = [w for w in words if w[:1].isupper()]
        if sentence.startswith(phrase) and len(capitals) == 1:
            continue  # an ordinary sentence start ("Linen trousers would …")
        distinctive = [w for w in capitals if fold(w) not in _NEVER_NAMES and fold(w) not in _COLOUR_WORDS
                       and fold(w) not in MATERIALS]
        if not distinctive:
            continue
        matching = names.matching(phrase)
        if not matching:
            problems.append(Problem("unknown_product", f"it names '{phrase}', which is not a piece of the maison's catalog"))
        elif not matching & known and not matching & named:
            problems.append(Problem("unknown_product", f"it names '{phrase}', which is not among the pieces retrieved for this question"))
    problems.extend(_noun_first_problems(sentence, named, names, known))
    return problems


def _noun_first_problems(sentence: str, named: set[str], names: _Names, known: set[str]) -> list[Problem]:
    """Names after a French or Italian noun ("le sac Riviera", "la borsa Aurore") that no
    piece of that kind in the catalog bears, or whose piece was not retrieved.
    """
    problems: list[Problem] = []
    for match in _NOUN_FIRST.finditer(sentence):
        distinctive = _distinctive(match.group("name"))
        if not distinctive:
            continue
        phrase = f"{match.group('noun')} {' '.join(distinctive)}"
        matching = names.of_kind(match.group("noun"), distinctive)
        if not matching:
            problems.append(Problem("unknown_product", f"it names '{phrase}', which is not a piece of the maison's catalog"))
        elif not matching & known and not matching & named:
            problems.append(Problem("unknown_product", f"it names '{phrase}', which is not among the pieces retrieved for this question"))
    return problems


def _repeats_rules(answer: str, rules: str, window: int = 8) -> bool:
    if not rules:
        return False
    words = fold(rules).split()
    text = f" {fold(answer)} "
    return any(f" {' '.join(words[i:i + window])} " in text for i in range(len(words) - window + 1))


def _budget_figures(fit: Fit | None) -> set[tuple[str, int]]:
    """The client's own budget figures ((currency, amount)): a draft may repeat them."""
    if fit is None or fit.constraints.budget is None:
        return set()
    budget = fit.constraints.budget
    return {(fit.currency, budget.amount)} | ({(fit.currency, budget.upper)} if budget.upper else set())


def named_products(answer: str, catalog: Sequence[ProductFacts]) -> list[str]:
    """The ids of the catalog pieces ``answer`` names, in catalog order."""
    names = _Names(catalog)
    named = set().union(*(names.mentioned(sentence) for sentence in _sentences(answer))) if answer else set()
    return [p.id for p in catalog if p.id in named]


def _said_as_hers(sentence: str, product: ProductFacts, window: int = 4) -> bool:
    """The piece is spoken of as the client's own ("your Aurore tote", "votre sac
    Aurore", "il Suo Amalfi silk dress").
    """
    first = re.search(rf"(?<!\w){re.escape(product.name.split()[0])}(?!\w)", sentence, re.IGNORECASE)
    if first is None:
        return False
    return bool(_POSSESSIVES & set(fold(sentence[:first.start()]).split()[-window:]))


def _constraint_problems(sentence: str, named: set[str], by_id: Mapping[str, ProductFacts], allowed: set[str],
                         owned: set[str], fit: Fit | None) -> list[Problem]:
    """Pieces named that the client already has (suggested again), or, with ``fit``,
    that break her budget or are not cut for whom they are meant.
    """
    out: list[Problem] = []
    for pid in sorted(named):
        product = by_id[pid]
        if pid in owned and pid not in allowed:
            if not _said_as_hers(sentence, product):
                out.append(Problem("owned", f"it suggests the {product.name}, which the client already has; "
                                            "suggest only the pieces in FACTS"))
            continue
        if fit is None:
            continue
        reasons = fit.reasons(product)
        if "budget" in reasons:
            budget = fit.constraints.budget
            assert budget is not None
            price = fit.price(product)
            out.append(Problem("budget", f"it suggests the {product.name} at {price} {fit.currency}, outside the "
                                         f"client's budget ({budget.kind} {budget.amount}"
                                         f"{f'-{budget.upper}' if budget.upper else ''} {fit.currency})"))
        if "recipient" in reasons:
            whom = ", ".join(r.relation for r in fit.constraints.for_whom)
            out.append(Problem("recipient", f"it suggests the {product.name}, which is not made for the client's "
                                            f"{whom}"))
    return out


def _price_problems(sentence: str, context: Sequence[ProductFacts], retrieved: Sequence[ProductFacts],
                    budget_figures: set[tuple[str, int]] | None = None) -> list[Problem]:
    out: list[Problem] = []
    for quoted, currency, amount in _amounts(sentence):
        if amount is not None and (currency, amount) in (budget_figures or set()):
            continue
        candidates = context or retrieved
        prices = {p.price_eur if currency == "EUR" else p.price_gbp for p in candidates}
        if amount is None or amount not in prices:
            subject = " or ".join(p.name for p in candidates[:3]) or "any retrieved piece"
            out.append(Problem("price", f"it quotes {quoted}, which is not the {currency} price of {subject}"))
    return out


def _material_problems(sentence: str, context: Sequence[ProductFacts]) -> list[Problem]:
    if not context:
        return []
    out: list[Problem] = []
    support = " ".join(
        fold(" ".join([p.name, *p.materials, p.description, p.craft])) for p in context
    )
    words = fold(sentence).split()
    for index, word in enumerate(words):
        pair = f"{words[index - 1]} {word}" if index else ""
        material = pair if pair in MATERIALS else word
        needs = MATERIALS.get(material)
        if needs is None:
            continue
        if _POSSESSIVES & set(words[max(0, index - 4):index]):
            continue  # the client's own piece
        if not any(need in support for need in needs):
            subject = " / ".join(p.name for p in context)
            out.append(Problem("material", f"it says '{material}' about the {subject}, whose materials are "
                               f"{'; '.join(', '.join(p.materials) for p in context)}"))
    return out


def _colour_problems(sentence: str, context: Sequence[ProductFacts], colours: Sequence[str]) -> list[Problem]:
    """A catalog colour name (Noir, Bleu Nuit, Rouge Opéra …) said of a piece not made in it."""
    if not context:
        return []
    made = {fold(part) for p in context for c in p.colours for part in (c, *c.split("/"))}
    out: list[Problem] = []
    rest = sentence
    for colour in colours:
        pattern = re.compile(rf"(?<!\w){re.escape(colour)}(?!\w)")
        found = pattern.search(rest)
        if found is None:
            continue
        before = fold(rest[:found.start()]).split()[-3:]
        rest = pattern.sub(" ", rest)
        if _POSSESSIVES & set(before):
            continue  # the client's own piece
        if fold(colour) not in made:
            subject = " / ".join(p.name for p in context)
            out.append(Problem("colour", f"it offers the {subject} in {colour}, which is not one of its colours "
                               f"({'; '.join(', '.join(p.colours) for p in context)})"))
    return out


class _Stock:
    """Units on hand per piece in the cities a sentence names (all boutiques if none)."""

    def __init__(self, sentence: str, cities: Mapping[str, str]) -> None:
        self.named = sorted({_CITIES[w] for w in fold(sentence).split() if w in _CITIES})
        self.by_city = {city: boutique for boutique, city in cities.items()}
        self.places: list[str | None] = list(self.named) or [None]
        self.where = " and ".join(self.named)

    def units(self, product: ProductFacts, city: str | None) -> int:
        counts = product.units_by_boutique()
        if city is None:
            return sum(counts.values())
        return counts.get(self.by_city.get(city, city.casefold()), 0)

    def each_boutique(self, product: ProductFacts) -> list[int]:
        if self.named:
            return [self.units(product, city) for city in self.named]
        return list(product.units_by_boutique().values())


def _stock_problems(sentence: str, context: Sequence[ProductFacts], cities: Mapping[str, str]) -> list[Problem]:
    """What ``sentence`` claims about units on hand (the first claim it makes of: last
    piece, a few left, unavailable, available), against the stock of ``context``.
    """
    if not context:
        return []
    stock = _Stock(sentence, cities)
    if _LAST_PIECE.search(sentence):
        return [Problem("stock", f"it says the {p.name} is down to its last piece, which its stock does not show")
                for p in context if 1 not in stock.each_boutique(p)]
    few = _FEW_LEFT.search(sentence)
    if few is not None:
        said = few.group(0)
        count = next((n for n in map(number_value, _WORD.findall(said)) if n is not None), None)
        return [Problem("stock", f"it says '{said}' of the {p.name}, which its stock does not show")
                for p in context
                if not (count in stock.each_boutique(p) if count is not None
                        else any(1 <= n <= FEW_PIECES for n in stock.each_boutique(p)))]
    if _NOT_AVAILABLE.search(sentence):
        return [Problem("stock", f"it says the {p.name} is unavailable, but it is on hand in {stock.where or 'our boutiques'}")
                for p in context if all(stock.units(p, place) > 0 for place in stock.places)]
    if any(not _negated(sentence, match.start()) for match in _AVAILABLE.finditer(sentence)):
        return [Problem("stock", f"it says the {p.name} is available, but none is on hand in {stock.where or 'any boutique'}")
                for p in context if any(stock.units(p, place) == 0 for place in stock.places)]
    return []


def _negated(sentence: str, at: int, window: int = 3) -> bool:
    """Whether one of the few words before ``at`` negates what follows ("not", "pas", "non")."""
    return bool(_NEGATIONS & set(fold(sentence[:at]).split()[-window:]))
