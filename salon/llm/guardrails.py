"""Every answer is checked against the facts it was given before a client can see it.

:func:`check` returns the problems of a draft, each a sentence the model can act on when
it is asked to repair (see :func:`salon.llm.prompt.repair_messages`):

- ``unknown_product``: a catalog piece that was not retrieved for this turn, or a
  product-like name (``the Riviera silk blouse``, ``a Birkin bag``) that is not in the
  catalog at all;
- ``price``: an amount that is not the price, in that currency, of a piece the sentence
  (or the one before it) names;
- ``material``: a material the piece in question is not made of (the client's own
  clothes, "your … wool blazer", are theirs to describe);
- ``stock``: "available in London", "last piece", "sold out" against units on hand;
- ``colour``: a catalog colour (Noir, Bleu Nuit …) said of a piece not made in it;
- ``promise``: discounts, sales, free or dated delivery;
- ``contact``: phone numbers or e-mail addresses;
- ``internal_id``: catalog ids (``RW-002``) shown to the client;
- ``other_client``: a person addressed or named by title who is not this client;
- ``leak``: the instructions repeated, or talk of prompts and rules;
- ``voice``: "As an AI", exclamation cascades, emoji runs, hype;
- ``length``: more than :data:`MAX_CHARS` characters (two or three WhatsApp sentences).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from salon.integrations.catalog import COLOUR_FAMILIES, ProductFacts, fold
from salon.llm.context import ClientContext

__all__ = ["MAX_CHARS", "Problem", "Verdict", "check"]

MAX_CHARS: Final = 600

_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")
_NUMBER = r"\d{1,3}(?:[,.\u202f\u00a0 ]\d{3})+(?:[.,]\d{2})?(?!\d)|\d+(?:[.,]\d{2})?(?!\d)"
_MONEY = re.compile(
    rf"(?P<c1>[€£])\s?(?P<n1>{_NUMBER})"
    rf"|(?P<n2>{_NUMBER})\s?(?P<c2>€|£|eur(?:os?)?\b|gbp\b|pounds?\b|livres?\b)",
    re.IGNORECASE,
)
_CURRENCY = {"€": "EUR", "£": "GBP", "eur": "EUR", "euro": "EUR", "euros": "EUR", "gbp": "GBP",
             "pound": "GBP", "pounds": "GBP", "livre": "GBP", "livres": "GBP"}

# material word (folded) → words that must appear in the piece's facts to support it
MATERIALS: Final[Mapping[str, tuple[str, ...]]] = {
    "cashmere": ("cashmere",), "cachemire": ("cashmere",),
    "silk": ("silk",), "soie": ("silk",),
    "linen": ("linen",), "lin": ("linen",),
    "wool": ("wool",), "laine": ("wool",),
    "velvet": ("velvet",), "velours": ("velvet",),
    "satin": ("satin",),
    "leather": ("calfskin", "lambskin", "leather", "suede"), "cuir": ("calfskin", "lambskin", "leather"),
    "calfskin": ("calfskin",), "lambskin": ("lambskin",), "suede": ("suede",), "daim": ("suede",),
    "cotton": ("cotton",), "coton": ("cotton",), "canvas": ("canvas",), "gabardine": ("gabardine",),
    "gold": ("gold",), "platinum": ("platinum",), "platine": ("platinum",),
    "steel": ("steel",), "acier": ("steel",), "titanium": ("titanium",), "silver": ("silver", "argent"),
    "diamond": ("diamond",), "diamonds": ("diamond",), "diamant": ("diamond",), "diamants": ("diamond",),
    "pearl": ("pearl",), "pearls": ("pearl",), "perle": ("pearl",), "perles": ("pearl",),
    "ceramic": ("ceramic",), "alligator": ("alligator",), "crocodile": ("crocodile",),
    "ostrich": ("ostrich",), "sapphire": ("sapphire",), "emerald": ("emerald",), "ruby": ("ruby",),
    "denim": ("denim",), "tweed": ("tweed",), "mohair": ("mohair",), "vicuna": ("vicuna",),
}

PRODUCT_NOUNS: Final = (
    "tote", "bag", "clutch", "coat", "dress", "gown", "shirt", "blouse", "skirt", "blazer",
    "jacket", "trousers", "sweater", "cardigan", "scarf", "belt", "wallet", "briefcase",
    "weekender", "necklace", "ring", "earrings", "bracelet", "bangle", "pendant", "cuffs",
    "watch", "holder", "sandals", "shoes", "loafers", "heels", "boots", "hat", "sunglasses",
    "tie", "cufflinks", "perfume", "fragrance", "cologne", "backpack", "pouch",
)
_PRODUCT_LIKE = re.compile(
    r"(?P<name>(?:[A-ZÀ-Ý][\w'’-]*\s+){1,4}(?:[a-zà-ÿ-]+\s+){0,2}(?:" + "|".join(PRODUCT_NOUNS) + r"))\b"
)
_NEVER_NAMES = {"maison", "solenne", "a", "an", "the", "your", "our", "this", "that", "my", "for",
                "with", "and", "le", "la", "les", "un", "une", "votre", "notre", "ce", "cette"}

_PROMISE = re.compile(
    r"(?:\b\d+\s?%\s?(?:off\b|discount)|\bdiscount|on sale|\bsale\b|promo|promotion|special offer|voucher|coupon|"
    r"reduction|réduction|remise|soldes|sconto|free (?:delivery|shipping)|"
    r"complimentary (?:delivery|shipping)|deliver(?:ed|y)? (?:by|tomorrow|within|in \d|today)|"
    r"next[- ]day|same[- ]day delivery|express delivery|ships? (?:today|tomorrow|within)|"
    r"livraison (?:gratuite|offerte|demain|express)|livrée? (?:demain|sous)|price match|"
    r"guarantee(?:d)? (?:delivery|price))",
    re.IGNORECASE,
)
_CONTACT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ()./-]{7,}\d")
_VOICE = re.compile(
    r"\bas an ai\b|\bi am an ai\b|\bi'm an ai\b|language model|\bchatgpt\b|\bopenai\b|great question|"
    r"en tant qu(?:e |')(?:ia|intelligence artificielle)|mod[eè]le de langage|\bas a bot\b",
    re.IGNORECASE,
)
_LEAK = re.compile(
    r"\bFACTS\b|system (?:prompt|message)|my (?:instructions|rules|prompt)|these (?:instructions|rules)|"
    r"mes (?:instructions|consignes)|quoted data",
    re.IGNORECASE,
)
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_TITLE = re.compile(r"\b(?:Ms|Mrs|Miss|Mr|Mx|Mme|Mlle|M\.|Dr|Madame|Monsieur)\s+([A-ZÀ-Ý][\w'’-]+)")

_CITIES = {"paris": "Paris", "london": "London", "londres": "London", "milan": "Milan", "milano": "Milan"}
_LAST_PIECE = re.compile(r"last (?:piece|one)|only one left|derni[eè]re pi[eè]ce|ultimo pezzo", re.IGNORECASE)
_NOT_AVAILABLE = re.compile(
    r"out of stock|sold out|not available|unavailable|no longer available|[ée]puis[ée]|plus disponible|"
    r"non disponible", re.IGNORECASE,
)
_AVAILABLE = re.compile(r"\bin stock\b|\bavailable\b|\bdisponible\b|\bon hand\b", re.IGNORECASE)


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


def _amount(raw: str) -> int | None:
    text = raw.replace("\u202f", " ").replace("\u00a0", " ").strip()
    text = re.sub(r"[.,]\d{2}$", "", text)
    digits = re.sub(r"[ ,.]", "", text)
    return int(digits) if digits.isdigit() else None


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
        first_words: dict[str, list[str]] = {}
        for product in catalog:
            self.full[fold(product.name)] = product.id
            self.words[product.id] = set(fold(product.name).split())
            first_words.setdefault(product.name.split()[0], []).append(product.id)
        # First words that are also places or ordinary words name no piece on their own.
        generic = {"Eau", "Nuit", "Jardin", "Fleur", "Bois", "Ambre", "Sable", "Capri", "Alpine",
                   "Riviera", "Portofino", "Amalfi", "Halo", "Perle", "Lune", "Soleil", "Tailleur"}
        # A first word two pieces share (Méridien) cannot tell which one is meant.
        self.first = {word: ids[0] for word, ids in first_words.items() if word not in generic and len(ids) == 1}

    def mentioned(self, sentence: str) -> set[str]:
        folded = f" {fold(sentence)} "
        ids = {pid for name, pid in self.full.items() if f" {name} " in folded}
        for word, pid in self.first.items():
            if re.search(rf"\b{re.escape(word)}\b", sentence):
                ids.add(pid)
        return ids

    def matching(self, phrase: str) -> set[str]:
        """Products whose name holds every word of ``phrase`` ("Amalfi dress")."""
        wanted = {w for w in fold(phrase).split() if w not in _NEVER_NAMES}
        return {pid for pid, words in self.words.items() if wanted and wanted <= words}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text) if s.strip()]


def check(
    answer: str,
    retrieved: Sequence[ProductFacts],
    catalog: Sequence[ProductFacts],
    cities: Mapping[str, str],
    client: ClientContext,
    rules: str = "",
) -> Verdict:
    """The problems of ``answer`` given what was retrieved for this turn."""
    allowed = {p.id: p for p in retrieved}
    by_id = {p.id: p for p in catalog}
    owned = {purchase.product_id for purchase in client.purchases}
    known = set(allowed) | owned
    names = _Names(catalog)
    catalog_colours = sorted({c for p in catalog for c in p.colours if c[:1].isupper()}, key=len, reverse=True)

    problems = _voice_problems(answer, rules)
    problems.extend(_disclosure_problems(answer, by_id, client))
    previous: set[str] = set()
    for sentence in _sentences(answer):
        named = names.mentioned(sentence)
        problems.extend(_naming_problems(sentence, named, names, by_id, known))
        context_ids = {pid for pid in named if pid in allowed} or previous
        context = [allowed[pid] for pid in sorted(context_ids)]
        problems.extend(_price_problems(sentence, context, retrieved))
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
    return problems


def _repeats_rules(answer: str, rules: str, window: int = 8) -> bool:
    if not rules:
        return False
    words = fold(rules).split()
    text = f" {fold(answer)} "
    return any(f" {' '.join(words[i:i + window])} " in text for i in range(len(words) - window + 1))


def _price_problems(sentence: str, context: Sequence[ProductFacts], retrieved: Sequence[ProductFacts]) -> list[Problem]:
    out: list[Problem] = []
    for match in _MONEY.finditer(sentence):
        symbol = (match.group("c1") or match.group("c2") or "").casefold()
        currency = _CURRENCY.get(symbol, "EUR")
        amount = _amount(match.group("n1") or match.group("n2") or "")
        candidates = context or retrieved
        prices = {p.price_eur if currency == "EUR" else p.price_gbp for p in candidates}
        if amount is None or amount not in prices:
            subject = " or ".join(p.name for p in candidates[:3]) or "any retrieved piece"
            out.append(Problem("price", f"it quotes {match.group(0).strip()}, which is not the {currency} price of {subject}"))
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
        needs = MATERIALS.get(word)
        if needs is None:
            continue
        if "your" in words[max(0, index - 4):index] or "votre" in words[max(0, index - 4):index]:
            continue  # the client's own piece
        if not any(need in support for need in needs):
            subject = " / ".join(p.name for p in context)
            out.append(Problem("material", f"it says '{word}' about the {subject}, whose materials are "
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
        if "your" in before or "votre" in before:
            continue  # the client's own piece
        if fold(colour) not in made:
            subject = " / ".join(p.name for p in context)
            out.append(Problem("colour", f"it offers the {subject} in {colour}, which is not one of its colours "
                               f"({'; '.join(', '.join(p.colours) for p in context)})"))
    return out


def _stock_problems(sentence: str, context: Sequence[ProductFacts], cities: Mapping[str, str]) -> list[Problem]:
    if not context:
        return []
    folded = fold(sentence).split()
    named_cities = sorted({_CITIES[w] for w in folded if w in _CITIES})
    by_city = {city: boutique for boutique, city in cities.items()}
    out: list[Problem] = []

    def units(product: ProductFacts, city: str | None) -> int:
        counts = product.units_by_boutique()
        if city is None:
            return sum(counts.values())
        return counts.get(by_city.get(city, city.casefold()), 0)

    places: list[str | None] = list(named_cities) or [None]
    if _LAST_PIECE.search(sentence):
        for product in context:
            counts = product.units_by_boutique()
            ok = any(counts.get(by_city.get(c, ""), 0) == 1 for c in named_cities) if named_cities else 1 in counts.values()
            if not ok:
                out.append(Problem("stock", f"it says the {product.name} is down to its last piece, which its stock does not show"))
    elif _NOT_AVAILABLE.search(sentence):
        for product in context:
            if all(units(product, place) > 0 for place in places):
                where = " and ".join(named_cities) or "our boutiques"
                out.append(Problem("stock", f"it says the {product.name} is unavailable, but it is on hand in {where}"))
    elif _AVAILABLE.search(sentence) and not re.search(r"\b(?:not|no longer|pas|plus)\b", sentence, re.IGNORECASE):
        for product in context:
            if any(units(product, place) == 0 for place in places):
                where = " and ".join(named_cities) or "any boutique"
                out.append(Problem("stock", f"it says the {product.name} is available, but none is on hand in {where}"))
    return out
