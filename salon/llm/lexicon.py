"""The words the guardrails read a draft with, one vocabulary per language the maison
writes (English, French, Italian).

A draft is checked against every vocabulary at once: a model asked for French may still
slip into English, and an invented price is invented in any language. Each
:class:`Vocabulary` holds everything one language contributes (materials, the words for
kinds of pieces, stock and delivery claims, titles, numbers in words, currencies); the
guardrails build their patterns from :data:`VOCABULARIES` and hold no words of their own.
A fourth language is one more :class:`Vocabulary` added to :data:`VOCABULARIES`.

Patterns are regular-expression fragments matched case-insensitively on the draft as
written (accents and all); word lists are folded (:func:`salon.integrations.catalog.fold`:
lower case, no accents).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from salon.integrations.catalog import fold

__all__ = [
    "ENGLISH",
    "FRENCH",
    "ITALIAN",
    "VOCABULARIES",
    "Vocabulary",
    "merged",
    "number_value",
    "spelled_amount",
    "union",
]

_NUM_EN = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_NUM_FR = r"(?:\d+|deux|trois|quatre|cinq|six|sept|huit|neuf|dix)"
_NUM_IT = r"(?:\d+|due|tre|quattro|cinque|sei|sette|otto|nove|dieci)"


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What one language contributes to the guardrails.

    ``materials``: a material word (folded; two words for a phrase such as "in pelle")
    → words of the catalog's (English) facts that must support it.
    ``product_nouns``: the words for kinds of pieces. With ``noun_first`` (French,
    Italian: "la borsa Riviera") each maps to the catalog's name words or categories such a
    piece has; otherwise (English: "the Riviera silk blouse") the name comes before the
    noun and the mapping only lists the nouns.
    ``number_words``: small numbers, tens, and the multipliers 100 and 1000, folded;
    ``compound_numbers``: whether numbers are written as one word (Italian
    "milleduecento", with the elided tens in ``elided_tens``).
    """

    code: str
    materials: Mapping[str, tuple[str, ...]]
    product_nouns: Mapping[str, tuple[str, ...]]
    noun_first: bool
    articles: frozenset[str]
    possessives: frozenset[str]
    cities: Mapping[str, str]
    currencies: Mapping[str, str]
    number_words: Mapping[str, int]
    titles: tuple[str, ...]
    promises: tuple[str, ...]
    last_piece: tuple[str, ...]
    few_left: tuple[str, ...]
    not_available: tuple[str, ...]
    available: tuple[str, ...]
    negations: frozenset[str]
    voice: tuple[str, ...]
    leak: tuple[str, ...]
    connectors: frozenset[str] = frozenset()
    compound_numbers: bool = False
    elided_tens: Mapping[str, int] = field(default_factory=dict)


_TENS_EN = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
            "eighty": 80, "ninety": 90}

ENGLISH: Final = Vocabulary(
    code="en",
    materials={
        "cashmere": ("cashmere",), "silk": ("silk",), "linen": ("linen",), "wool": ("wool",),
        "velvet": ("velvet",), "satin": ("satin",),
        "leather": ("calfskin", "lambskin", "leather", "suede"),
        "calfskin": ("calfskin",), "lambskin": ("lambskin",), "suede": ("suede",),
        "cotton": ("cotton",), "canvas": ("canvas",), "gabardine": ("gabardine",),
        "gold": ("gold",), "platinum": ("platinum",), "steel": ("steel",), "titanium": ("titanium",),
        "silver": ("silver", "argent"), "diamond": ("diamond",), "diamonds": ("diamond",),
        "pearl": ("pearl",), "pearls": ("pearl",), "ceramic": ("ceramic",),
        "alligator": ("alligator",), "crocodile": ("crocodile",), "ostrich": ("ostrich",),
        "sapphire": ("sapphire",), "emerald": ("emerald",), "ruby": ("ruby",), "denim": ("denim",),
        "tweed": ("tweed",), "mohair": ("mohair",), "vicuna": ("vicuna",),
    },
    product_nouns={noun: (noun,) for noun in (
        "tote", "bag", "clutch", "coat", "dress", "gown", "shirt", "blouse", "skirt", "blazer",
        "jacket", "trousers", "sweater", "cardigan", "scarf", "belt", "wallet", "briefcase",
        "weekender", "necklace", "ring", "earrings", "bracelet", "bangle", "pendant", "cuffs",
        "watch", "holder", "sandals", "shoes", "loafers", "heels", "boots", "hat", "sunglasses",
        "tie", "cufflinks", "perfume", "fragrance", "cologne", "backpack", "pouch",
    )},
    noun_first=False,
    articles=frozenset({"a", "an", "the", "your", "our", "this", "that", "my", "for", "with", "and"}),
    possessives=frozenset({"your", "yours"}),
    cities={"london": "London", "paris": "Paris", "milan": "Milan"},
    currencies={"eur": "EUR", "euro": "EUR", "euros": "EUR", "gbp": "GBP", "pounds": "GBP",
                "sterling": "GBP"},
    number_words={"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                  "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
                  "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
                  "nineteen": 19, **_TENS_EN, "hundred": 100, "thousand": 1000},
    connectors=frozenset({"and", "a", "an"}),
    titles=("Ms", "Mrs", "Miss", "Mr", "Mx", "Dr"),
    promises=(
        r"\b\d+\s?%\s?(?:off\b|discount)", r"\bdiscount", r"\bon sale\b", r"\b(?:the|a) sales?\b",
        r"\b(?:winter|summer|private|seasonal|end[- ]of[- ]season) sales?\b",
        r"\bsales? (?:price|prices|items?|event|period|season)\b",
        r"\bpromo", r"special offer", r"voucher", r"coupon", r"\breduction", r"price match",
        r"free (?:delivery|shipping|of charge)", r"\bfor free\b", r"at no (?:extra |additional )?(?:cost|charge)",
        r"complimentary (?:delivery|shipping|alterations?)",
        r"deliver(?:ed|y)? (?:by|tomorrow|within|in \d|today)", r"next[- ]day", r"same[- ]day delivery",
        r"express delivery", r"ships? (?:today|tomorrow|within)", r"arrives? (?:by|tomorrow|today|within)",
        r"\b(?:we|i) (?:can )?guarantee", r"\bguaranteed?\b",
    ),
    last_piece=(r"\blast (?:piece|one)\b", r"\bonly one left\b", r"\bsingle piece left\b"),
    few_left=(
        rf"\bonly {_NUM_EN} (?:pieces? )?(?:left|remaining)\b", rf"\b{_NUM_EN} (?:pieces? )?left\b",
        rf"\blast {_NUM_EN} (?:pieces|ones)\b", r"\blast few\b", r"\bfew (?:pieces )?left\b", r"\blimited (?:stock|availability)\b",
    ),
    not_available=(
        r"out of stock", r"sold out", r"\bnot (?:\w+ ){0,2}available", r"\bunavailable",
        r"no longer available", r"isn['’]t (?:\w+ )?available", r"\bnot (?:\w+ )?in stock",
    ),
    available=(r"\bin stock\b", r"\bavailable\b", r"\bon hand\b"),
    negations=frozenset({"not", "no", "never", "longer", "isn", "aren", "t"}),
    voice=(
        r"\bas an ai\b", r"\bi am an ai\b", r"\bi['’]m an ai\b", r"language model", r"\bchatgpt\b",
        r"\bopenai\b", r"great question", r"\bas a bot\b",
    ),
    leak=(
        r"\bFACTS\b", r"system (?:prompt|message)", r"my (?:instructions|rules|prompt)",
        r"these (?:instructions|rules)", r"quoted data",
    ),
)

FRENCH: Final = Vocabulary(
    code="fr",
    materials={
        "cachemire": ("cashmere",), "soie": ("silk",), "lin": ("linen",), "laine": ("wool",),
        "velours": ("velvet",), "cuir": ("calfskin", "lambskin", "leather"), "daim": ("suede",),
        "veau": ("calfskin",), "agneau": ("lambskin",), "coton": ("cotton",), "toile": ("canvas",),
        "platine": ("platinum",), "acier": ("steel",), "titane": ("titanium",),
        "diamant": ("diamond",), "diamants": ("diamond",), "perle": ("pearl",), "perles": ("pearl",),
        "ceramique": ("ceramic",), "autruche": ("ostrich",), "saphir": ("sapphire",),
        "emeraude": ("emerald",), "rubis": ("ruby",), "vigogne": ("vicuna",),
    },
    product_nouns={
        "sac": ("tote", "bag", "clutch", "briefcase", "weekender"), "cabas": ("tote",),
        "pochette": ("clutch",), "besace": ("bag",), "porte-documents": ("briefcase",),
        "bagage": ("weekender",), "portefeuille": ("wallet",), "porte-cartes": ("holder",),
        "ceinture": ("belt",), "manteau": ("coat",), "trench": ("coat",), "chemise": ("shirt",),
        "chemisier": ("shirt", "blouse"), "veste": ("blazer", "jacket"), "blazer": ("blazer",),
        "carré": ("scarf",), "foulard": ("scarf",), "écharpe": ("scarf",), "robe": ("dress", "gown"),
        "pull": ("sweater",), "pantalon": ("trousers",), "jupe": ("skirt",),
        "collier": ("necklace", "pendant"), "bague": ("ring",), "chevalière": ("ring",),
        "bracelet": ("bracelet", "bangle"), "jonc": ("bangle",), "pendentif": ("pendant",),
        "boucles d'oreilles": ("earrings", "cuffs"), "montre": ("watches",), "parfum": ("fragrance",),
        "chaussures": ("shoes",), "escarpins": ("shoes",), "mocassins": ("loafers",),
        "bottes": ("boots",), "sandales": ("sandals",), "lunettes": ("sunglasses",),
        "chapeau": ("hat",), "cravate": ("tie",), "boutons de manchette": ("cufflinks",),
    },
    noun_first=True,
    articles=frozenset({"le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "votre", "vos",
                        "notre", "nos", "ce", "cette", "ces", "au", "aux", "vous"}),
    possessives=frozenset({"votre", "vos", "ton", "ta", "tes"}),
    cities={"londres": "London", "paris": "Paris", "milan": "Milan"},
    currencies={"euro": "EUR", "euros": "EUR", "livres": "GBP"},
    number_words={"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
                  "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13,
                  "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20, "vingts": 20, "trente": 30,
                  "quarante": 40, "cinquante": 50, "soixante": 60, "cent": 100, "cents": 100,
                  "mille": 1000},
    connectors=frozenset({"et"}),
    titles=("Mme", "Mlle", "M.", "Madame", "Mademoiselle", "Monsieur", "Docteur"),
    promises=(
        r"\bréduction", r"\bremises?\b", r"\bsoldes\b", r"\bpromo", r"offre spéciale",
        r"prix (?:spécial|préférentiel|d['’]ami)", r"bon d['’]achat", r"\d+\s?% de (?:réduction|remise)",
        r"(?<![\w-])-\s?\d+\s?%",
        r"livraison (?:gratuite|offerte|demain|express|rapide|sous|en \d|le jour même|dès demain)",
        r"livr[ée]e?s? (?:dès |)(?:demain|aujourd['’]hui|sous|d['’]ici|en \d|avant)",
        r"exp[ée]di[ée]e?s? (?:dès |)(?:aujourd['’]hui|demain|sous|d['’]ici)",
        r"recevr(?:ez|a|ont) (?:\w+ ){0,2}(?:demain|sous|d['’]ici|dès)",
        r"\bgratuit(?:e|s|es|ement)?\b", r"à titre gracieux", r"\bgracieusement", r"\bsans frais\b",
        r"offert(?:e|s|es)? par la maison", r"retouches? offertes?",
        r"\bnous (?:vous )?(?:le |la |les )?garantissons", r"\bje vous (?:le |la |les )?garantis",
        r"\bgaranti(?:e|s|es)?\b", r"alignement (?:de|des) prix",
    ),
    last_piece=(
        r"derni[eè]re pi[eè]ce", r"dernier exemplaire", r"plus qu['’]une(?: seule)?(?: pi[eè]ce)?\b",
        r"\bqu['’]une (?:seule )?pi[eè]ce", r"\bune seule pi[eè]ce", r"\bpi[eè]ce unique",
    ),
    few_left=(
        rf"\bplus que {_NUM_FR}\b", rf"\bque {_NUM_FR} (?:pi[eè]ces|exemplaires)\b",
        rf"\ben reste(?:nt)? (?:encore |seulement )?{_NUM_FR}\b", rf"\breste(?:nt)? (?:plus |seulement )?que {_NUM_FR}\b",
        rf"\b{_NUM_FR} derni[eè]res pi[eè]ces", r"derni[eè]res pi[eè]ces",
        r"derniers exemplaires", r"quelques pi[eè]ces seulement", r"\bstock limit[ée]",
    ),
    not_available=(
        r"[ée]puis[ée]e?s?", r"en rupture", r"plus disponibles?", r"pas (?:\w+ )?disponibles?",
        r"\bindisponibles?", r"(?:pas|plus) en stock",
    ),
    available=(r"\ben stock\b", r"\bdisponibles?\b"),
    negations=frozenset({"pas", "plus", "jamais", "ne", "n"}),
    voice=(
        r"en tant qu(?:e |['’])(?:ia|intelligence artificielle)", r"mod[eè]le de langage",
        r"je suis une (?:ia|intelligence artificielle)", r"excellente question",
    ),
    leak=(
        r"mes (?:instructions|consignes)", r"ces (?:instructions|consignes)",
        r"(?:prompt|message) (?:du )?syst[eè]me", r"donn[ée]es cit[ée]es",
    ),
)

_TENS_IT = {"venti": 20, "trenta": 30, "quaranta": 40, "cinquanta": 50, "sessanta": 60,
            "settanta": 70, "ottanta": 80, "novanta": 90}

ITALIAN: Final = Vocabulary(
    code="it",
    materials={
        "seta": ("silk",), "lino": ("linen",), "lana": ("wool",), "velluto": ("velvet",),
        "raso": ("satin",), "in pelle": ("calfskin", "lambskin", "leather", "suede"),
        "di pelle": ("calfskin", "lambskin", "leather", "suede"), "camoscio": ("suede",),
        "vitello": ("calfskin",), "agnello": ("lambskin",), "cotone": ("cotton",), "tela": ("canvas",),
        "oro": ("gold",), "platino": ("platinum",), "acciaio": ("steel",), "titanio": ("titanium",),
        "diamante": ("diamond",), "diamanti": ("diamond",), "brillanti": ("diamond",),
        "perla": ("pearl",), "perle": ("pearl",), "ceramica": ("ceramic",), "struzzo": ("ostrich",),
        "coccodrillo": ("crocodile",), "alligatore": ("alligator",), "zaffiro": ("sapphire",),
        "smeraldo": ("emerald",), "rubino": ("ruby",), "vigogna": ("vicuna",),
    },
    product_nouns={
        "borsa": ("tote", "bag", "clutch", "briefcase", "weekender"), "borsetta": ("bag", "clutch"),
        "pochette": ("clutch",), "tracolla": ("bag",), "secchiello": ("bucket",),
        "cartella": ("briefcase",), "valigetta": ("briefcase",), "borsone": ("weekender",),
        "portafoglio": ("wallet",), "portacarte": ("holder",), "cintura": ("belt",),
        "cappotto": ("coat",), "trench": ("coat",), "camicia": ("shirt",),
        "giacca": ("blazer", "jacket"), "blazer": ("blazer",), "sciarpa": ("scarf",),
        "foulard": ("scarf",), "carré": ("scarf",), "abito": ("dress", "gown"),
        "vestito": ("dress", "gown"), "maglione": ("sweater",), "maglia": ("sweater",),
        "pantaloni": ("trousers",), "gonna": ("skirt",), "collana": ("necklace", "pendant"),
        "anello": ("ring",), "bracciale": ("bracelet", "bangle"), "braccialetto": ("bracelet", "bangle"),
        "ciondolo": ("pendant",), "pendente": ("pendant",), "orecchini": ("earrings", "cuffs"),
        "orologio": ("watches",), "profumo": ("fragrance",), "fragranza": ("fragrance",),
        "scarpe": ("shoes",), "mocassini": ("loafers",), "stivali": ("boots",), "sandali": ("sandals",),
        "occhiali": ("sunglasses",), "cappello": ("hat",), "cravatta": ("tie",), "gemelli": ("cufflinks",),
    },
    noun_first=True,
    articles=frozenset({"il", "lo", "la", "i", "gli", "le", "l", "un", "uno", "una", "del", "della",
                        "dello", "dell", "dei", "degli", "delle", "nell", "all", "sull", "suo", "sua",
                        "suoi", "sue", "lei", "nostro", "nostra", "questo", "questa", "di", "da"}),
    possessives=frozenset({"suo", "sua", "suoi", "sue", "tuo", "tua", "tuoi", "tue", "vostro", "vostra",
                           "vostri", "vostre"}),
    cities={"londra": "London", "parigi": "Paris", "milano": "Milan"},
    currencies={"euro": "EUR", "sterlina": "GBP", "sterline": "GBP"},
    number_words={"uno": 1, "una": 1, "un": 1, "due": 2, "tre": 3, "quattro": 4, "cinque": 5, "sei": 6,
                  "sette": 7, "otto": 8, "nove": 9, "dieci": 10, "undici": 11, "dodici": 12,
                  "tredici": 13, "quattordici": 14, "quindici": 15, "sedici": 16, "diciassette": 17,
                  "diciotto": 18, "diciannove": 19, **_TENS_IT, "cento": 100, "mille": 1000,
                  "mila": 1000},
    compound_numbers=True,
    elided_tens={word[:-1]: value for word, value in _TENS_IT.items()} | {"cent": 100},
    connectors=frozenset({"e"}),
    titles=("Signora", "Signorina", "Signor", "Signore", "Sig.ra", "Sig.na", "Sig.", "Dott.ssa",
            "Dott.", "Dottoressa", "Dottor"),
    promises=(
        r"\bscont[oi]\b", r"\bscontat[oaie]\b", r"\bsaldi\b", r"\bpromozion[ei]", r"offerta speciale",
        r"prezzo (?:speciale|riservato|di favore)", r"buono (?:sconto|regalo|acquisto)",
        r"codice (?:sconto|promo)", r"\d+\s?% di sconto",
        r"consegna (?:gratuita|gratis|domani|express|espressa|rapida|in giornata|entro|in \d|garantita|immediata)",
        r"consegnat[oaie] (?:già |)(?:domani|oggi|entro|in giornata|in \d)",
        r"spedizione (?:gratuita|gratis|express|espressa|in giornata|immediata|entro)",
        r"spedit[oaie] (?:oggi|domani|entro|in giornata)",
        r"ricever(?:à|a|ete|anno) (?:\w+ ){0,2}(?:domani|entro|in giornata)",
        r"\bgratuit(?:o|a|i|e|amente)\b", r"\bgratis\b", r"\bin omaggio\b", r"\bcome omaggio\b",
        r"\bomaggio (?:della|dalla) maison\b", r"a titolo gratuito", r"senza (?:costi|spese) (?:aggiuntiv[ie]|extra)",
        r"\b(?:le |vi |ti |glielo |gliela )?garantiamo\b", r"\b(?:le |vi |ti )?garantisco\b",
        r"\bgarantit[oaie]\b", r"\bgaranzia\b",
    ),
    last_piece=(
        r"ultimo (?:pezzo|esemplare)", r"\bun (?:solo|unico) (?:pezzo|esemplare)",
        r"\bne (?:resta|rimane) (?:solo |soltanto )?(?:uno|una|un pezzo)\b",
        r"\b(?:resta|rimane) (?:solo|soltanto) (?:uno|una|un pezzo)\b", r"\bpezzo unico\b",
    ),
    few_left=(
        rf"\bultimi {_NUM_IT} (?:pezzi|esemplari)\b", r"ultimi (?:pezzi|esemplari)",
        rf"\b(?:solo|soltanto) {_NUM_IT} (?:pezzi|esemplari)\b",
        rf"\bne (?:restano|rimangono) (?:solo |soltanto |ancora )?{_NUM_IT}\b",
        rf"\b(?:restano|rimangono) (?:solo|soltanto) {_NUM_IT}\b",
        r"\bpochi (?:pezzi|esemplari)\b", r"disponibilit[àa] limitata", r"scorte limitate",
    ),
    not_available=(
        r"esaurit[oaie]", r"\bnon (?:[\w'’àèéìòù]+ ){0,3}disponibil[ei]", r"\bindisponibil[ei]",
        r"\bnon (?:[\w'’àèéìòù]+ ){0,3}in (?:stock|magazzino)", r"fuori stock", r"più disponibil[ei]",
    ),
    available=(r"\bdisponibil[ei]\b", r"\bin magazzino\b", r"\bin pronta consegna\b"),
    negations=frozenset({"non", "piu", "mai"}),
    voice=(
        r"in quanto (?:ia|intelligenza artificiale)", r"\bcome (?:ia|intelligenza artificiale)\b",
        r"sono un['’ ]?(?:ia|intelligenza artificiale)", r"modello (?:linguistico|di linguaggio)",
        r"ottima domanda",
    ),
    leak=(
        r"\bmie (?:istruzioni|regole)", r"queste (?:istruzioni|regole)", r"prompt di sistema",
        r"messaggio di sistema", r"dati citati",
    ),
)

VOCABULARIES: Final[Mapping[str, Vocabulary]] = {v.code: v for v in (ENGLISH, FRENCH, ITALIAN)}
"""Every language the guardrails read, by ISO 639-1 code."""


def union(patterns: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of ``patterns``."""
    return re.compile("(?:" + "|".join(patterns) + ")", re.IGNORECASE)


def merged(field_name: str) -> dict[str, tuple[str, ...]]:
    """A word → support mapping merged over every vocabulary (``materials`` or
    ``product_nouns``); a word two languages share keeps both languages' supports.
    """
    out: dict[str, tuple[str, ...]] = {}
    for vocabulary in VOCABULARIES.values():
        mapping: Mapping[str, tuple[str, ...]] = getattr(vocabulary, field_name)
        for word, support in mapping.items():
            out[word] = tuple(dict.fromkeys((*out.get(word, ()), *support)))
    return out


# ------------------------------------------------------------------ numbers in words
def _number_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for vocabulary in VOCABULARIES.values():
        table.update(vocabulary.number_words)
    return table


_NUMBER_WORDS: Final = _number_table()
_MORPHEMES: Final = sorted(
    {word: value for v in VOCABULARIES.values() if v.compound_numbers
     for word, value in {**v.number_words, **v.elided_tens}.items()}.items(),
    key=lambda item: -len(item[0]),
)
_CONNECTORS: Final = frozenset(word for v in VOCABULARIES.values() for word in v.connectors)


def _segments(word: str) -> list[int] | None:
    """The values of an Italian compound ("tremilacinquecento" → 3, 1000, 5, 100)."""
    if not word:
        return []
    for morpheme, value in _MORPHEMES:
        if word.startswith(morpheme):
            rest = _segments(word[len(morpheme):])
            if rest is not None:
                return [value, *rest]
    return None


def number_value(word: str) -> int | None:
    """The value of one number word or digits ("deux", "2", "ventitré"), else None."""
    folded = fold(word)
    if folded.isdigit():
        return int(folded)
    if folded in _NUMBER_WORDS:
        return _NUMBER_WORDS[folded]
    parts = _segments(folded)
    if parts and len(parts) > 1:
        return _evaluate(parts)
    return None


def _evaluate(values: Sequence[int]) -> int:
    total, current, previous = 0, 0, 0
    for value in values:
        if value == 100:
            current = (current or 1) * 100
        elif value == 1000:
            total += (current or 1) * 1000
            current = 0
        elif value == 20 and previous == 4:
            current += 76  # quatre-vingt(s)
        else:
            current += value
        previous = value
    return total + current


def spelled_amount(words: Sequence[str]) -> tuple[int, int] | None:
    """The amount spelled out at the end of ``words`` ("un prix de deux mille") and how
    many of the words it takes, or None when the last word is not a number.
    """
    values: list[int] = []
    taken = 0
    for raw in reversed(words):
        folded = fold(raw)
        if values and folded in ("a", "an"):
            if values[0] in (100, 1000):  # "a thousand": the amount's first word
                taken += 1
            break
        if values and folded in _CONNECTORS:
            taken += 1
            continue
        parsed = _parsed(folded)
        if not parsed:
            break
        values[:0] = parsed
        taken += 1
    # A connector is never the amount's first word ("and two thousand").
    while taken and fold(words[len(words) - taken]) in _CONNECTORS - {"a", "an"}:
        taken -= 1
    if not values:
        return None
    return _evaluate(values), taken


def _parsed(folded: str) -> list[int]:
    """The values of one folded word ("quatre vingt" → 4, 20), empty if it is no number."""
    parsed: list[int] = []
    for piece in folded.split():
        if piece in _NUMBER_WORDS:
            parsed.append(_NUMBER_WORDS[piece])
            continue
        segments = _segments(piece)
        if not segments:
            return []
        parsed.extend(segments)
    return parsed
