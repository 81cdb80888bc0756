"""What the client said a styling suggestion must respect, read from her own words.

:func:`parse_constraints` reads one message, in English, French or Italian (the
conversation's language first, the other two for the words a client borrows), into a
:class:`Constraints`:

- ``budget`` (:class:`Budget`): "under 800 euros" (``under``: strictly below), "up to",
  "max 800", "massimo 1.500 euro", "jusqu'à 1 000 €", a bare amount with a currency
  (``max``: at most); "around £2k", "autour de 2 000 €", "sui 2.000 euro" (``around``:
  from :data:`AROUND_BELOW` to :data:`AROUND_ABOVE` times the amount); "between 300 and
  600", "entre 300 et 600", "tra 300 e 600 euro" (``between``, bounds included); "at
  least", "à partir de", "almeno" (``min``). Amounts in digits (``1,500``, ``1.500``,
  ``1 500``, ``2k``, ``1,5 mila``) or words ("deux mille euros", "a thousand pounds").
  A number with no currency and no budget word ("size 38", "her 50th birthday") is no
  budget.
- ``currency``: EUR (€, euro, balles), GBP (£, pounds, quid, livres, sterline), or
  another the catalog has no price in (USD, CHF); ``None`` when she named none: the
  budget is then in the client's currency (GBP for London clients, else EUR), as the
  prices she is quoted.
- ``recipients`` (:class:`Recipient`): for whom ("my husband", "ma mère", "mia figlia",
  "for him", "pour elle", "a child", "mon fils de 8 ans"), with the gender the
  relation says and whether it is a child. Nobody named: the piece is for the client
  herself, or, for a gift ("a present", "un cadeau", "un regalo"), for someone unknown.
- ``occasions`` (wedding, birthday, gala …), ``season``, ``size`` (:class:`Size`:
  "size 38", "taille 40", "taglia 42", "ring size 52"), ``colours`` (:class:`Colour`:
  "in black", "un sac noir", "una borsa nera"), ``kinds`` (the kinds of piece she asks
  for: "a watch", "une montre", "un orologio").
- ``places``: place names she mentions ("a wedding in Capri", "sur la Riviera") and
  ``query``: her words for the ranking with the places, the amounts and sizes taken out,
  and her own pieces ("my navy blazer", "mon blazer marine") too, so that a piece never
  ranks because its name is a place ("Capri linen shirt") or because she already has one
  like it. "The Capri shirt", "la camicia Capri" name the piece and stay.
- ``repeat``: she asks for the same again ("the same as my Aurore bag", "un autre",
  "lo stesso"): a piece she names may then be one she owns.

Her own pieces and what she pairs with ("with my black dress", "avec une robe",
"sopra un abito da sera") are not what she asks for: their kinds and colours are no
constraint.

The catalog has no gender or age field. :func:`wearers` reads who a piece is cut for
from how the catalog describes it: dresses, gowns, clutches, the small and softly
curved bags, necklaces, pendants, earrings, bracelets and bangles, the silk carré, a
wrap-front coat and high-waisted trousers are women's; rings are made in French sizes
48–56 (women's hands: every man in the client book wears 60 or more) and a watch under
36 mm is a women's watch; everything else (totes, briefcases, small leather goods, belts,
the blazer, trench, velvet jacket, sweater and shirt, the men's-size watches, every
fragrance) is for anyone. Nothing is made for children: every size is an adult's.

:class:`Fit` applies the constraints to one product, for one client: :meth:`Fit.reasons`
says which it breaks (``budget``, ``recipient``, ``owned``, ``kind``, ``size``,
``colour``). A piece the client owns or has on order (:attr:`ClientContext.owned`) is
skipped unless she names it and is not only pairing with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from salon.conversation.language import supported
from salon.integrations.catalog import ProductFacts, best_name_match, fold
from salon.llm.context import ClientContext
from salon.llm.lexicon import spelled_amount

__all__ = [
    "AROUND_ABOVE",
    "AROUND_BELOW",
    "Budget",
    "Colour",
    "Constraints",
    "Fit",
    "Recipient",
    "Size",
    "client_gender",
    "kind_matches",
    "parse_constraints",
    "wearers",
]

AROUND_BELOW: Final = 0.7
""""Around X" admits prices from this share of X …"""
AROUND_ABOVE: Final = 1.1
"""… up to this share of X."""

WOMAN, MAN = "woman", "man"
ANYONE: Final = frozenset({WOMAN, MAN})


# --------------------------------------------------------------------------- the result
@dataclass(frozen=True, slots=True)
class Budget:
    """How much the client means to spend.

    ``kind``: ``under`` (price < amount), ``max`` (≤ amount), ``around`` (between
    :data:`AROUND_BELOW` and :data:`AROUND_ABOVE` × amount), ``between`` (amount ≤ price
    ≤ upper) or ``min`` (≥ amount). ``currency``: EUR, GBP, another code, or None (the
    client's).
    """

    kind: str
    amount: int
    upper: int | None = None
    currency: str | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        """The lowest and highest price admitted (None: no bound)."""
        if self.kind == "around":
            return self.amount * AROUND_BELOW, self.amount * AROUND_ABOVE
        if self.kind == "between":
            return float(self.amount), float(self.upper if self.upper is not None else self.amount)
        if self.kind == "min":
            return float(self.amount), None
        return None, float(self.amount)

    def admits(self, price: int) -> bool:
        """Whether ``price`` (in the budget's currency) is within the budget."""
        if self.kind == "under":
            return price < self.amount
        low, high = self.bounds()
        return (low is None or price >= low) and (high is None or price <= high)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who the piece is for: ``relation`` as she said it, in English (``husband``,
    ``mother``, ``friend``, ``child``, ``self`` for herself, ``someone`` for an unnamed
    gift), the ``gender`` it says (``woman``, ``man`` or None) and whether it is a child.
    """

    relation: str
    gender: str | None = None
    child: bool = False

    @property
    def is_self(self) -> bool:
        return self.relation == "self"


@dataclass(frozen=True, slots=True)
class Size:
    """A size she gave: ``value`` ("38", "52", "M") in a ``system``: ``garment`` (FR
    ready-to-wear), ``ring`` (French ring sizes), ``belt`` (cm) or ``letter`` (S, M, L).
    """

    value: str
    system: str


@dataclass(frozen=True, slots=True)
class Colour:
    """A colour she asks for: her ``word`` as written and the ``family`` it means (a key
    of :data:`salon.integrations.catalog.COLOUR_FAMILIES` or a catalog colour).
    """

    word: str
    family: str


@dataclass(frozen=True, slots=True)
class Constraints:
    """What one message asks a suggestion to respect (see the module's docstring)."""

    text: str
    language: str = "en"
    query: str = ""
    budget: Budget | None = None
    currency: str | None = None
    recipients: tuple[Recipient, ...] = ()
    occasions: tuple[str, ...] = ()
    season: str | None = None
    size: Size | None = None
    colours: tuple[Colour, ...] = ()
    kinds: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    repeat: bool = False
    gift: bool = False

    @property
    def for_whom(self) -> tuple[Recipient, ...]:
        """The recipients, or the client herself, or someone unknown for a gift."""
        if self.recipients:
            return self.recipients
        return (Recipient("someone"),) if self.gift else (Recipient("self"),)

    @property
    def restricts(self) -> bool:
        """Whether anything here narrows the catalog beyond what is owned."""
        return bool(self.budget or self.kinds or self.size or self.colours
                    or any(not r.is_self for r in self.for_whom))

    def facts(self) -> dict[str, Any]:
        """The constraints as the model's facts show them (only what was said)."""
        out: dict[str, Any] = {}
        if self.budget is not None:
            out["budget"] = {"kind": self.budget.kind, "amount": self.budget.amount,
                             "upper": self.budget.upper, "currency": self.budget.currency}
        out["for"] = [{"relation": r.relation, "gender": r.gender, "child": r.child} for r in self.for_whom]
        for key, value in (("occasions", list(self.occasions)), ("season", self.season),
                           ("colours", [c.word for c in self.colours]), ("kinds", list(self.kinds))):
            if value:
                out[key] = value
        if self.size is not None:
            out["size"] = {"value": self.size.value, "system": self.size.system}
        return out


# --------------------------------------------------------------------------- words
_CURRENCY_WORDS: Final[Mapping[str, str]] = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "balles": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "livre": "GBP",
    "livres": "GBP", "livres sterling": "GBP", "sterling": "GBP", "sterlina": "GBP", "sterline": "GBP",
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "chf": "CHF",
}
_NUM = r"\d{1,3}(?:[.,' ]\d{3})+(?!\d)|\d+(?:[.,]\d{1,2})?(?!\d)"
_MULT = r"k|mila|mille|thousand|grand"
_CUR_BEFORE = r"€|£|\$|eur\b|gbp\b|usd\b|chf\b"
_CUR_AFTER = (r"€|£|\$|euros?\b|eur\b|gbp\b|pounds?\b|quid\b|livres? sterling\b|livres?\b|sterling\b"
              r"|sterlin[ae]\b|sterline\b|usd\b|dollars?\b|balles\b|chf\b")
_UNITS = r"\s?(?:mm|cm|ml|ans|anni|an|years?|yrs?|y/o|yo|%|ct|carats?|carati|h|th|st|nd|rd|e|eme|ème|°)\b"


def _amount_pattern(n: int) -> str:
    return (rf"(?:(?P<c1_{n}>{_CUR_BEFORE})\s?)?(?P<n_{n}>{_NUM})(?:\s?(?P<m_{n}>{_MULT})\b)?"
            rf"(?:\s?(?P<c2_{n}>{_CUR_AFTER}))?")


_AMOUNT = re.compile(_amount_pattern(0), re.IGNORECASE)
_RANGE = re.compile(
    rf"\b(?P<w>between|entre|tra|fra|from|de|da|dai)\s+(?:(?:the|les|i|gli)\s+)?{_amount_pattern(1)}"
    rf"\s*(?:and|et|e|to|a|à|-|–|ai|agli)\s*(?:(?:the|les|i|gli)\s+)?{_amount_pattern(2)}"
    rf"|(?<![\w.,])(?P<b>){_amount_pattern(3)}\s*[-–]\s*{_amount_pattern(4)}",
    re.IGNORECASE,
)
_SPELLED_CURRENCY = re.compile(rf"(?P<c>{_CUR_AFTER})", re.IGNORECASE)
_GRAND = re.compile(r"\b(?P<n>a|one|two|three|four|five|\d+)\s+grand\b", re.IGNORECASE)

# Budget words, folded, as they end the words before an amount (or follow it).
_BEFORE: Final[Sequence[tuple[str, str]]] = tuple(sorted((
    *((w, "under") for w in ("under", "below", "less than", "beneath", "sub", "moins de", "en dessous de",
                              "au dessous de", "inferieur a", "sous", "sous la barre de", "sous les", "meno di",
                              "sotto", "sotto i", "sotto gli", "sotto le", "inferiore a", "al di sotto di",
                              "al di sotto dei", "al di sotto degli")),
    *((w, "max") for w in ("up to", "max", "maximum", "at most", "no more than", "not more than", "not over",
                            "no higher than", "nothing over", "nothing above", "not above", "nothing more than", "within", "budget", "budget of", "budget is", "budget max", "spend",
                            "jusqu a", "au maximum", "maxi", "pas plus de", "au plus", "budget de", "budget est de",
                            "ne pas depasser", "max de", "massimo", "al massimo", "fino a", "fino ai", "fino agli",
                            "non piu di", "entro", "entro i", "entro gli", "budget di", "budget e di", "spendere",
                            "massimo di", "a budget of", "un budget de", "un budget di")),
    *((w, "around") for w in ("around", "about", "roughly", "approximately", "approx", "circa",
                               "in the region of", "something like", "autour de", "environ", "a peu pres",
                               "aux alentours de", "dans les", "vers les", "intorno a", "intorno ai",
                               "intorno agli", "sui", "sugli", "piu o meno", "all incirca", "attorno a",
                               "attorno ai", "budget around", "budget autour de", "budget intorno ai")),
    *((w, "min") for w in ("over", "above", "more than", "at least", "au moins", "plus de", "a partir de",
                            "au dela de", "minimum", "almeno", "piu di", "oltre", "oltre i", "sopra i",
                            "minimo")),
), key=lambda item: -len(item[0])))
_AFTER: Final[Sequence[tuple[str, str]]] = (
    ("or less", "max"), ("or under", "max"), ("max", "max"), ("maximum", "max"), ("tops", "max"),
    ("at most", "max"), ("au maximum", "max"), ("maxi", "max"), ("ou moins", "max"), ("grand maximum", "max"),
    ("al massimo", "max"), ("massimo", "max"), ("o meno", "max"), ("circa", "around"), ("environ", "around"),
    ("or so", "around"), ("ish", "around"), ("or more", "min"), ("ou plus", "min"), ("o piu", "min"),
    ("in su", "min"), ("budget", "max"),
)
_PAID: Final = frozenset({"paid", "pay", "payed", "cost", "costs", "spent", "paye", "payee", "coute", "coutait",
                          "pagato", "pagata", "costato", "costata", "speso", "costa"})

_SIZE = re.compile(
    r"\b(?:(?P<ring>ring|bague|anello)\s+)?(?:size|taille|taglia|misura|tg\.?)\s*"
    r"(?:(?:de|di|d')\s*(?:bague|anello)\s+)?(?:is\s+|est\s+|è\s+|:\s*)?(?:an?\s+|du\s+|la\s+|il\s+)?"
    r"(?P<v>\d{2,3}|xxs|xs|s|m|l|xl|xxl)(?![\w'’])"
    r"|\b(?:(?:je|il|elle)\s+)?(?:fais|fait|porte)\s+(?:du|une?|la\s+taille)\s+(?P<v2>\d{2})(?![\w])"
    r"|\bport[oa]\s+(?:la|il|una?)\s+(?:taglia\s+)?(?P<v3>\d{2})(?![\w])"
    r"|\b(?:i'm|i am|he's|he is|she's|she is|i wear|he wears|she wears)\s+(?:an?\s+)?(?:size\s+)?(?P<v4>\d{2})(?![\w])",
    re.IGNORECASE,
)
_RING_WORDS = re.compile(r"\b(?:ring|rings|bague|bagues|anello|anelli|doigt|dito|signet|chevali[eè]re)\b", re.I)
_BELT_WORDS = re.compile(r"\b(?:belt|ceinture|cintura)\b", re.IGNORECASE)

_POSSESSIVES: Final = frozenset({"my", "mon", "ma", "mes", "mio", "mia", "miei", "mie"})
_PAIRING: Final = frozenset({
    "with", "match", "matches", "matching", "pair", "brighten", "complement", "over", "under", "underneath",
    "avec", "assortir", "assorti", "assortie", "accompagner", "egayer", "sous", "sur", "par", "dessus",
    "con", "col", "coi", "abbinare", "abbinato", "abbinata", "accompagnare", "ravvivare", "sopra", "sotto",
    "al", "alla", "allo", "ai", "agli", "alle",
})
_WEARING: Final = frozenset({"in", "en", "wearing", "portant", "indossando"})
_NEGATIONS: Final = frozenset({"not", "no", "pas", "non", "sans", "senza", "niente", "nothing", "rien", "except",
                               "sauf", "tranne", "without"})
_ARTICLES: Final = frozenset({
    "a", "an", "the", "some", "un", "une", "le", "la", "les", "l", "des", "du", "de", "d", "uno", "una", "il",
    "lo", "i", "gli", "del", "della", "dei", "delle", "un'", "this", "that", "ce", "cette", "questo", "questa",
})
_ADJECTIVES: Final = frozenset({
    "new", "old", "favourite", "favorite", "little", "small", "long", "short", "big", "evening", "lovely",
    "nouveau", "nouvelle", "nouvel", "vieux", "vieille", "petit", "petite", "grand", "grande", "beau", "belle",
    "longue", "soiree", "nuovo", "nuova", "vecchio", "vecchia", "preferito", "preferita", "piccolo",
    "piccola", "lungo", "lunga", "da", "sera", "silk", "linen", "leather", "wool", "cashmere", "velvet", "gold",
    "soie", "lin", "cuir", "laine", "cachemire", "seta", "lino", "pelle", "lana", "navy", "dark", "light",
})
_REPEAT: Final = frozenset({
    "same", "another", "again", "second", "identical", "replace", "replacement", "meme", "autre", "encore",
    "identique", "remplacer", "deuxieme", "stesso", "stessa", "altro", "altra", "ancora", "uguale",
    "identico", "identica", "sostituire", "secondo", "seconda",
})
_GIFT: Final = frozenset({
    "gift", "gifts", "present", "presents", "cadeau", "cadeaux", "offrir", "offrira", "regalo", "regali",
    "regalare", "pensierino", "surprise", "sorpresa", "spoil", "treat",
})

# kind → (categories, words of the piece's name); a piece of the kind has one or the other
KINDS: Final[Mapping[str, tuple[frozenset[str], tuple[str, ...]]]] = {
    "bag": (frozenset(), ("tote", "bag", "clutch", "briefcase", "weekender")),
    "clutch": (frozenset(), ("clutch",)),
    "briefcase": (frozenset(), ("briefcase",)),
    "travel bag": (frozenset(), ("weekender",)),
    "wallet": (frozenset(), ("wallet", "card holder")),
    "belt": (frozenset(), ("belt",)),
    "coat": (frozenset(), ("coat",)),
    "jacket": (frozenset(), ("blazer", "jacket")),
    "shirt": (frozenset(), ("shirt",)),
    "trousers": (frozenset(), ("trousers",)),
    "sweater": (frozenset(), ("sweater",)),
    "dress": (frozenset(), ("dress", "gown")),
    "scarf": (frozenset(), ("scarf",)),
    "clothing": (frozenset({"ready_to_wear"}), ()),
    "jewellery": (frozenset({"jewellery"}), ()),
    "necklace": (frozenset(), ("necklace", "pendant")),
    "ring": (frozenset(), ("ring",)),
    "earrings": (frozenset(), ("earrings", "ear cuffs")),
    "bracelet": (frozenset(), ("bracelet", "bangle")),
    "watch": (frozenset({"watches"}), ()),
    "fragrance": (frozenset({"fragrance"}), ()),
    "shoes": (frozenset(), ("shoes", "loafers", "boots", "sandals")),
    "tie": (frozenset(), ("tie",)),
    "cufflinks": (frozenset(), ("cufflinks",)),
    "sunglasses": (frozenset(), ("sunglasses",)),
    "hat": (frozenset(), ("hat",)),
}
"""The kinds of piece a client may ask for, and how a catalog piece is of that kind."""


def _words(table: str) -> dict[str, str]:
    """``"word word2:kind; …"`` → {folded words: kind}."""
    out: dict[str, str] = {}
    for entry in table.split(";"):
        words, kind = entry.rsplit(":", 1)
        for word in words.split(","):
            out[word.strip()] = kind.strip()
    return out


_KIND_WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": _words(
        "bag,bags,handbag,handbags,tote,totes,purse,holdall:bag; clutch,clutches:clutch; briefcase:briefcase;"
        "weekender,weekend bag,travel bag,duffle:travel bag; wallet,wallets,card holder,cardholder:wallet;"
        "belt,belts:belt; coat,coats,trench,overcoat:coat; jacket,jackets,blazer,blazers:jacket;"
        "shirt,shirts:shirt; trousers,pants:trousers; sweater,sweaters,jumper,jumpers,pullover,knit:sweater;"
        "dress,dresses,gown,gowns:dress; scarf,scarves,carre:scarf; clothes,clothing,outfit,outfits:clothing;"
        "jewellery,jewelry,jewel,jewels:jewellery; necklace,necklaces,pendant,pendants:necklace;"
        "ring,rings,signet:ring; earrings,earring,ear cuffs:earrings; bracelet,bracelets,bangle,bangles:bracelet;"
        "watch,watches,timepiece,timepieces:watch; fragrance,fragrances,perfume,perfumes,scent,scents,cologne:fragrance;"
        "shoes,heels,loafers,sneakers,boots,sandals:shoes; tie,ties:tie; cufflinks:cufflinks;"
        "sunglasses:sunglasses; hat,hats:hat"),
    "fr": _words(
        "sac,sacs,cabas,besace,sac a main:bag; pochette,pochettes:clutch; porte documents,cartable:briefcase;"
        "bagage,sac de voyage:travel bag; portefeuille,porte cartes,porte monnaie:wallet; ceinture,ceintures:belt;"
        "manteau,manteaux,trench:coat; veste,vestes,blazer:jacket; chemise,chemises,chemisier:shirt;"
        "pantalon,pantalons:trousers; pull,pulls,chandail:sweater; robe,robes:dress;"
        "foulard,foulards,carre,echarpe:scarf; vetement,vetements,tenue,tenues:clothing; bijou,bijoux:jewellery;"
        "collier,colliers,pendentif:necklace; bague,bagues,chevaliere:ring; boucles d oreilles:earrings;"
        "bracelet,bracelets,jonc:bracelet; montre,montres:watch; parfum,parfums,eau de toilette:fragrance;"
        "chaussures,escarpins,mocassins,bottes:shoes; cravate:tie; boutons de manchette:cufflinks;"
        "lunettes:sunglasses; chapeau:hat"),
    "it": _words(
        "borsa,borse,borsetta,tracolla:bag; pochette:clutch; cartella,valigetta,ventiquattrore:briefcase;"
        "borsone,borsa da viaggio:travel bag; portafoglio,portafogli,portacarte:wallet; cintura,cinture:belt;"
        "cappotto,cappotti,trench:coat; giacca,giacche,blazer:jacket; camicia,camicie:shirt; pantaloni:trousers;"
        "maglione,maglioni,maglia,pullover:sweater; abito,abiti,vestito,vestiti:dress;"
        "foulard,sciarpa,sciarpe,carre:scarf; abbigliamento,outfit,completo:clothing; gioiello,gioielli:jewellery;"
        "collana,collane,ciondolo,pendente:necklace; anello,anelli:ring; orecchini:earrings;"
        "bracciale,bracciali,braccialetto:bracelet; orologio,orologi:watch; profumo,profumi,fragranza:fragrance;"
        "scarpe,mocassini,stivali:shoes; cravatta:tie; gemelli:cufflinks; occhiali:sunglasses; cappello:hat"),
}
_ALL_KIND_WORDS: Final = frozenset(w for table in _KIND_WORDS.values() for w in table)
_GARMENT_KINDS: Final = frozenset({"dress", "coat", "jacket", "shirt", "trousers", "sweater", "clothing"})

# (gender, child) by folded relation word, per language
_RELATIONS: Final[Mapping[str, Mapping[str, tuple[str, str | None, bool]]]] = {
    "en": {
        **{w: ("husband", MAN, False) for w in ("husband", "hubby")},
        **{w: (w, MAN, False) for w in ("boyfriend", "father", "son", "brother", "grandfather", "uncle", "nephew",
                                        "godfather", "godson", "grandson", "stepfather", "boss")},
        "fiance": ("fiance", MAN, False), "fiancee": ("fiancee", WOMAN, False),
        **{w: ("father", MAN, False) for w in ("dad", "daddy", "papa")},
        **{w: ("grandfather", MAN, False) for w in ("grandpa", "granddad", "grandad")},
        **{w: (w, WOMAN, False) for w in ("wife", "girlfriend", "mother", "daughter", "sister", "grandmother",
                                          "aunt", "niece", "godmother", "goddaughter", "granddaughter",
                                          "stepmother")},
        **{w: ("mother", WOMAN, False) for w in ("mum", "mom", "mummy", "mommy", "mama")},
        **{w: ("grandmother", WOMAN, False) for w in ("grandma", "granny", "nan", "nana")},
        "auntie": ("aunt", WOMAN, False),
        **{w: ("man", MAN, False) for w in ("him", "man", "men", "gentleman", "gentlemen", "gent", "mens")},
        **{w: ("woman", WOMAN, False) for w in ("her", "woman", "women", "lady", "ladies", "womens")},
        "his": ("man", MAN, False),
        **{w: ("child", None, True) for w in ("child", "children", "kid", "kids", "baby", "toddler", "newborn")},
        **{w: (w, None, False) for w in ("partner", "spouse", "friend", "friends", "colleague", "cousin",
                                         "teacher", "someone", "somebody", "parents")},
        "boy": ("boy", MAN, True), "girl": ("girl", WOMAN, True),
        **{w: ("self", None, False) for w in ("me", "myself")},
    },
    "fr": {
        **{w: ("husband", MAN, False) for w in ("mari", "epoux", "conjoint")},
        **{w: ("wife", WOMAN, False) for w in ("femme", "epouse", "conjointe")},
        "compagnon": ("partner", MAN, False), "compagne": ("partner", WOMAN, False),
        "copain": ("boyfriend", MAN, False), "copine": ("girlfriend", WOMAN, False),
        "ami": ("friend", MAN, False), "amie": ("friend", WOMAN, False), "amis": ("friends", None, False),
        "fiance": ("fiance", MAN, False), "fiancee": ("fiancee", WOMAN, False),
        **{w: ("mother", WOMAN, False) for w in ("mere", "maman")},
        **{w: ("father", MAN, False) for w in ("pere", "papa")},
        "fils": ("son", MAN, False), "fille": ("daughter", WOMAN, False),
        "frere": ("brother", MAN, False), "soeur": ("sister", WOMAN, False),
        "grandmere": ("grandmother", WOMAN, False), "mamie": ("grandmother", WOMAN, False),
        "grandpere": ("grandfather", MAN, False), "papi": ("grandfather", MAN, False),
        "petitfils": ("grandson", MAN, False), "petitefille": ("granddaughter", WOMAN, False),
        "bellemere": ("mother-in-law", WOMAN, False), "beaupere": ("father-in-law", MAN, False),
        "bellesoeur": ("sister-in-law", WOMAN, False), "beaufrere": ("brother-in-law", MAN, False),
        "oncle": ("uncle", MAN, False), "tante": ("aunt", WOMAN, False),
        "neveu": ("nephew", MAN, False), "niece": ("niece", WOMAN, False),
        "cousin": ("cousin", MAN, False), "cousine": ("cousin", WOMAN, False),
        "parrain": ("godfather", MAN, False), "marraine": ("godmother", WOMAN, False),
        "filleul": ("godson", MAN, False), "filleule": ("goddaughter", WOMAN, False),
        "collegue": ("colleague", None, False), "parents": ("parents", None, False), "patron": ("boss", MAN, False), "patronne": ("boss", WOMAN, False),
        "homme": ("man", MAN, False), "hommes": ("man", MAN, False), "monsieur": ("man", MAN, False),
        "dame": ("woman", WOMAN, False), "dames": ("woman", WOMAN, False), "madame": ("woman", WOMAN, False),
        "lui": ("man", MAN, False), "elle": ("woman", WOMAN, False),
        **{w: ("child", None, True) for w in ("enfant", "enfants", "bebe", "gamin", "gamine")},
        "garcon": ("boy", MAN, True),
        "moi": ("self", None, False),
    },
    "it": {
        "marito": ("husband", MAN, False), "moglie": ("wife", WOMAN, False),
        "compagno": ("partner", MAN, False), "compagna": ("partner", WOMAN, False),
        "fidanzato": ("fiance", MAN, False), "fidanzata": ("fiancee", WOMAN, False),
        "ragazzo": ("boyfriend", MAN, False), "ragazza": ("girlfriend", WOMAN, False),
        "amico": ("friend", MAN, False), "amica": ("friend", WOMAN, False), "amici": ("friends", None, False),
        **{w: ("mother", WOMAN, False) for w in ("madre", "mamma")},
        **{w: ("father", MAN, False) for w in ("padre", "papa", "babbo")},
        "figlio": ("son", MAN, False), "figlia": ("daughter", WOMAN, False),
        "fratello": ("brother", MAN, False), "sorella": ("sister", WOMAN, False),
        "nonna": ("grandmother", WOMAN, False), "nonno": ("grandfather", MAN, False),
        "suocera": ("mother-in-law", WOMAN, False), "suocero": ("father-in-law", MAN, False),
        "cognata": ("sister-in-law", WOMAN, False), "cognato": ("brother-in-law", MAN, False),
        "zio": ("uncle", MAN, False), "zia": ("aunt", WOMAN, False), "nipote": ("nephew or niece", None, False),
        "nipotino": ("grandson", MAN, True), "nipotina": ("granddaughter", WOMAN, True),
        "cugino": ("cousin", MAN, False), "cugina": ("cousin", WOMAN, False),
        "padrino": ("godfather", MAN, False), "madrina": ("godmother", WOMAN, False),
        "figlioccio": ("godson", MAN, False), "figlioccia": ("goddaughter", WOMAN, False),
        "collega": ("colleague", None, False), "genitori": ("parents", None, False), "capo": ("boss", None, False),
        "uomo": ("man", MAN, False), "uomini": ("man", MAN, False), "signore": ("man", MAN, False),
        "donna": ("woman", WOMAN, False), "donne": ("woman", WOMAN, False), "signora": ("woman", WOMAN, False),
        "lui": ("man", MAN, False), "lei": ("woman", WOMAN, False),
        **{w: ("child", None, True) for w in ("bambino", "bambini", "bimbo", "bimbi", "neonato", "neonata")},
        "bambina": ("child", WOMAN, True), "bimba": ("child", WOMAN, True),
        "me": ("self", None, False),
    },
}
# A word before a relation that makes it the recipient ("for my husband", "pour ma mère").
_FOR: Final = frozenset({"for", "to", "pour", "per", "offrir", "offrire", "regalare", "suit", "suits", "fit", "fits",
                         "flatter", *_GIFT})
_TO: Final = frozenset({"a", "au", "aux", "ad", "al", "alla"})  # "à ma mère", "a mio marito" (not English "a")
_GIVE: Final = frozenset({"get", "buy", "give", "bring", "find", "choose"})  # "get him something"
_CHILD_WORDS: Final = frozenset({"little", "young", "petit", "petite", "piccolo", "piccola", "small"})
_YOUNG_RELATIONS: Final = frozenset({"son", "daughter", "boy", "girl", "grandson", "granddaughter", "nephew", "niece",
                                     "nephew or niece", "godson", "goddaughter", "friend", "child", "cousin"})
# Occasions a relation attends with the client ("my sister's wedding"): she is not the recipient.
_ATTENDED: Final = frozenset({"wedding", "weddings", "party", "dinner", "christening", "graduation", "engagement",
                              "mariage", "fete", "diner", "bapteme", "matrimonio", "festa", "cena", "battesimo",
                              "laurea", "nozze", "gala", "soiree", "serata", "funeral", "funerailles"})
_AGE = re.compile(r"\b(\d{1,2})\s?(?:-?\s?years?[- ]old|[- ]?yo\b|y/o|ans\b|anni\b|-year-old)", re.IGNORECASE)

_OCCASIONS: Final[Mapping[str, str]] = _words(
    "birthday,bday,anniversaire,compleanno,turns,turning,compie:birthday; anniversary,anniversario:anniversary;"
    "wedding,weddings,mariage,matrimonio,nozze:wedding; engagement,fiancailles,fidanzamento:engagement;"
    "christening,baptism,bapteme,battesimo,communion,comunione:christening;"
    "graduation,graduating,graduates,diplome,laurea:graduation;"
    "christmas,xmas,noel,natale:christmas; valentine,valentin,valentino:valentines;"
    "gala,opera,cocktail,premiere,ball,soiree,serata,prima:evening; dinner,diner,cena:dinner;"
    "office,work,interview,meeting,bureau,travail,entretien,ufficio,lavoro,colloquio:work;"
    "trip,travel,travelling,holiday,holidays,vacation,voyage,vacances,viaggio,vacanza,vacanze,weekend:travel;"
    "beach,plage,spiaggia,yacht,mare:seaside; ski,apres,montagne,montagna:mountain;"
    "retirement,retraite,pensione:retirement; funeral,funerailles,funerale:funeral"
)
_OCCASION_PHRASES: Final[Mapping[tuple[str, ...], str]] = {
    ("black", "tie"): "black_tie", ("white", "tie"): "black_tie", ("cravate", "noire"): "black_tie",
    ("cravatta", "nera"): "black_tie", ("anniversaire", "de", "mariage"): "anniversary",
    ("mother", "s", "day"): "mothers_day", ("fete", "des", "meres"): "mothers_day",
    ("festa", "della", "mamma"): "mothers_day", ("father", "s", "day"): "fathers_day",
    ("fete", "des", "peres"): "fathers_day", ("festa", "del", "papa"): "fathers_day",
}
_SEASONS: Final[Mapping[str, str]] = _words(
    "summer,summery,estival,estivale,estate,estivo,estiva:summer; winter,wintry,hiver,hivernal,inverno,invernale:winter;"
    "spring,printemps,printanier,primavera,primaverile:spring; autumn,automne,autunno,autunnale:autumn"
)
_SEASON_AFTER: Final[Mapping[str, str]] = {"ete": "summer", "fall": "autumn"}  # only after d', l', cet, en, this, the

# colour word (folded; two words for a phrase) → a COLOUR_FAMILIES key or a catalog colour
_COLOURS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "black": "black", "white": "white", "ivory": "ivory", "cream": "ivory", "ecru": "ivory", "tan": "tan",
        "camel": "Camel", "cognac": "Cognac", "brown": "brown", "beige": "beige", "sand": "Sable",
        "taupe": "Taupe", "navy": "navy", "navy blue": "navy", "midnight blue": "navy", "blue": "blue",
        "burgundy": "burgundy", "red": "red", "pink": "pink", "coral": "Corail", "green": "green", "sage": "Vert Sauge",
        "grey": "grey", "gray": "grey", "gold": "gold", "golden": "gold", "yellow gold": "yellow gold",
        "rose gold": "rose gold", "white gold": "white gold", "silver": "silver", "platinum": "Platinum",
        "champagne": "Champagne", "sky blue": "Bleu Ciel", "light blue": "Bleu Ciel", "forest green": "Vert Foret",
    },
    "fr": {
        **{w: "black" for w in ("noir", "noire", "noirs", "noires")},
        **{w: "white" for w in ("blanc", "blanche", "blancs", "blanches")},
        "ivoire": "ivory", "creme": "ivory", "ecru": "ivory", "camel": "Camel", "cognac": "Cognac",
        **{w: "brown" for w in ("marron", "brun", "brune")}, "beige": "beige", "sable": "Sable", "taupe": "Taupe",
        "marine": "navy", "bleu marine": "navy", "bleu nuit": "navy",
        **{w: "blue" for w in ("bleu", "bleue", "bleus", "bleues")}, "bordeaux": "burgundy",
        **{w: "red" for w in ("rouge", "rouges")}, **{w: "pink" for w in ("rose", "roses")}, "corail": "Corail",
        **{w: "green" for w in ("vert", "verte", "verts", "vertes")}, "vert sauge": "Vert Sauge",
        **{w: "grey" for w in ("gris", "grise")}, **{w: "gold" for w in ("dore", "doree", "dores", "dorees")},
        "or": "gold", "or jaune": "yellow gold", "or rose": "rose gold", "or blanc": "white gold",
        "bleu ciel": "Bleu Ciel", "vert foret": "Vert Foret", "rouge opera": "Rouge Opera", "or pale": "Or Pale",
        "gris chine": "Gris Chine", "bleu mediterranee": "Bleu Mediterranee",
        **{w: "silver" for w in ("argent", "argente", "argentee")}, "platine": "Platinum", "champagne": "Champagne",
    },
    "it": {
        **{w: "black" for w in ("nero", "nera", "neri", "nere")},
        **{w: "white" for w in ("bianco", "bianca", "bianchi", "bianche")},
        "avorio": "ivory", "crema": "ivory", "ecru": "ivory", "cammello": "Camel", "cognac": "Cognac",
        "marrone": "brown", "beige": "beige", "sabbia": "Sable", "tortora": "Taupe",
        "blu": "blue", "blu notte": "navy", "blu navy": "navy", "azzurro": "blue", "azzurra": "blue",
        "bordeaux": "burgundy", "bordo": "burgundy", **{w: "red" for w in ("rosso", "rossa", "rossi", "rosse")},
        "rosa": "pink", "corallo": "Corail", "verde": "green", "verdi": "green", "salvia": "Vert Sauge",
        **{w: "grey" for w in ("grigio", "grigia", "grigi")}, "oro": "gold",
        **{w: "gold" for w in ("dorato", "dorata")}, "oro giallo": "yellow gold", "oro rosa": "rose gold",
        "oro bianco": "white gold", "argento": "silver", "platino": "Platinum", "champagne": "Champagne",
    },
}
_COLOUR_CUE: Final = frozenset({"in", "en", "colour", "color", "couleur", "colore", "tinta", "tons", "ton"})

# Places clients name; some are also the first word of a piece's name (Capri, Riviera …).
_PLACES: Final = tuple(tuple(p.split()) for p in (
    "capri", "amalfi", "amalfitana", "amalfitaine", "positano", "portofino", "riviera", "cote d azur",
    "saint tropez", "st tropez", "cannes", "monaco", "monte carlo", "mykonos", "ibiza", "sardinia",
    "sardaigne", "sardegna", "sicily", "sicile", "sicilia", "taormina", "sorrento", "ischia", "lake como",
    "lago di como", "lac de come", "como", "venice", "venise", "venezia", "rome", "roma", "florence", "firenze",
    "tuscany", "toscane", "toscana", "provence", "biarritz", "deauville", "alps", "alpes", "alpi", "alpine",
    "courchevel", "megeve", "gstaad", "st moritz", "saint moritz", "cortina", "zermatt", "verbier", "chamonix",
    "dolomites", "dolomiti", "new york", "dubai", "marrakech", "paris", "parigi", "london", "londres", "londra",
    "milan", "milano",
))
_LOCATIVES: Final[Mapping[str, frozenset[str]]] = {
    "en": frozenset({"in", "on", "at", "to", "near", "from", "visiting", "off", "around", "across", "of"}),
    "fr": frozenset({"a", "en", "sur", "dans", "pres", "vers", "de", "au", "aux", "du", "des"}),
    "it": frozenset({"a", "ad", "in", "su", "sulla", "sul", "nella", "nel", "per", "da", "verso", "vicino", "di",
                     "dalla", "alla", "al"}),
}
_NAME_NOUNS: Final = frozenset({"model", "modele", "modello", "piece", "pezzo"})


# --------------------------------------------------------------------------- parsing
def _normalised(text: str) -> str:
    """NFC, plain spaces and apostrophes, œ/æ spelled out, French compounds joined
    ("petite-fille" → "petitefille", granddaughter, unlike "petite fille", a little girl).
    """
    plain = unicodedata.normalize("NFC", text)
    for old, new in (("\u00a0", " "), ("\u202f", " "), ("’", "'"), ("œ", "oe"), ("Œ", "Oe"), ("æ", "ae")):
        plain = plain.replace(old, new)
    return re.sub(r"\b(petite?|grand|grande|belle|beau)-(\w)", r"\1\2", plain, flags=re.IGNORECASE)


def _value(number: str, multiplier: str | None) -> int | None:
    """An amount as written ("1,500", "1.500", "1 500", "2" with "k", "1,5" with "mila")."""
    raw = number.strip()
    if multiplier:
        plain = raw.replace(",", ".").replace(" ", "").replace("'", "")
        return round(float(plain) * 1000) if re.fullmatch(r"\d+(?:\.\d+)?", plain) else None
    if re.fullmatch(r"\d{1,3}(?:[.,' ]\d{3})+", raw):
        return int(re.sub(r"\D", "", raw))
    return int(float(raw.replace(",", ".")))


def _currency(*symbols: str | None) -> str | None:
    for symbol in symbols:
        if symbol:
            return _CURRENCY_WORDS.get(re.sub(r"\s+", " ", symbol.casefold()), None)
    return None


_NOT: Final = frozenset({"not", "don", "dont", "t", "no", "never", "nothing", "pas", "jamais", "rien", "non", "mai",
                         "niente", "nulla"})


def _cue(before: str, after: str) -> str | None:
    """The budget word ending ``before`` (folded) or starting ``after``; a negated
    minimum ("I don't want to spend more than", "je ne veux pas mettre plus de") is a
    maximum.
    """
    words = fold(before).split()[-8:]
    tail = " ".join(words)
    for phrase, kind in _BEFORE:
        if tail == phrase or tail.endswith(f" {phrase}"):
            ahead = words[:len(words) - len(phrase.split())][-5:]
            return "max" if kind == "min" and _NOT & set(ahead) else kind
    head = f"{fold(after)} "
    for phrase, kind in _AFTER:
        if head.startswith(f"{phrase} ") and not re.match(r"\d", head[len(phrase) + 1:]):
            return kind  # "800 max", but not the "massimo" of "44, massimo 3.000 euro"
    return None


def _paid(before: str) -> bool:
    """An amount after "paid", "payé", "pagato" … is a past price, not a budget."""
    return bool(_PAID & set(fold(before).split()[-4:]))


def _range_budget(text: str) -> tuple[Budget, tuple[int, int]] | None:
    for match in _RANGE.finditer(text):
        n = (1, 2) if match.group("w") else (3, 4)
        low = _value(match.group(f"n_{n[0]}"), match.group(f"m_{n[0]}"))
        high = _value(match.group(f"n_{n[1]}"), match.group(f"m_{n[1]}"))
        currency = _currency(*(match.group(f"{c}_{i}") for i in n for c in ("c1", "c2")))
        word = fold(match.group("w") or "")
        if low is not None and high is not None and low < 100 <= 1000 <= high and low * 1000 <= high:
            low *= 1000  # "10-12k", "entre 8 et 10 000 €": thousands for both
        if low is None or high is None or low >= high or high < 10:
            continue
        if currency is None and word not in {"between", "entre", "tra", "fra"}:
            continue
        return Budget("between", low, high, currency), match.span()
    return None


def _single_budget(text: str) -> tuple[Budget, tuple[int, int]] | None:
    for match in _AMOUNT.finditer(text):
        before, after = text[:match.start()], text[match.end():]
        currency = _currency(match.group("c1_0"), match.group("c2_0"))
        if _paid(before):
            continue
        if currency is None and (re.match(_UNITS, after, re.IGNORECASE) or re.search(r"\w$", before)):
            continue
        value = _value(match.group("n_0"), match.group("m_0"))
        if (match.group("m_0") or "").casefold() == "grand":
            currency = currency or "GBP"
        kind = _cue(before, after) or ("max" if currency else None)
        if kind is None or value is None or value < 10:
            continue
        return Budget(kind, value, None, currency), match.span()
    return _spelled_budget(text)


_ROUGHLY = re.compile(
    rf"\b(?:une\s+|un\s+|quelques\s+|qualche\s+)?(?P<w>centaines?|milliers?|centinai[oa]|migliai[oa])\s+"
    rf"(?:d['e]\s*|di\s+)(?P<c>{_CUR_AFTER})", re.IGNORECASE)


def _spelled_budget(text: str) -> tuple[Budget, tuple[int, int]] | None:
    """"deux mille euros", "a thousand pounds", "a grand", "duemila euro", "une
    centaine d'euros" (around 100), "un migliaio di euro" (around 1,000).
    """
    roughly = _ROUGHLY.search(text)
    if roughly is not None:
        amount = 100 if fold(roughly.group("w")).startswith("cent") else 1000
        return Budget("around", amount, None, _currency(roughly.group("c"))), roughly.span()
    grand = _GRAND.search(text)
    if grand is not None:
        word = grand.group("n").casefold()
        count = int(word) if word.isdigit() else {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}[word]
        before = text[:grand.start()]
        return Budget(_cue(before, text[grand.end():]) or "max", count * 1000, None, "GBP"), grand.span()
    for match in _SPELLED_CURRENCY.finditer(text):
        words = re.findall(r"[\w'-]+", text[:match.start()])[-8:]
        spelled = spelled_amount(words)
        if spelled is None or spelled[0] < 10:
            continue
        value, taken = spelled
        first = words[len(words) - taken]
        starts = [m.start() for m in re.finditer(rf"(?<![\w'-]){re.escape(first)}(?![\w'-])", text[:match.start()])]
        start = starts[-1] if starts else match.start()
        before = text[:start]
        if _paid(before):
            continue
        kind = _cue(before, text[match.end():]) or "max"
        return Budget(kind, value, None, _currency(match.group("c"))), (start, match.end())
    return None


def _budget(text: str) -> tuple[Budget | None, list[tuple[int, int]]]:
    found = _range_budget(text) or _single_budget(text)
    if found is None:
        return None, []
    return found[0], [found[1]]


def _size(text: str) -> tuple[Size | None, list[tuple[int, int]]]:
    match = _SIZE.search(text)
    if match is None:
        return None, []
    value = next(v for v in (match.group("v"), match.group("v2"), match.group("v3"), match.group("v4")) if v)
    window = text[max(0, match.start() - 40):match.end() + 20]
    if value.isalpha():
        system = "letter"
        value = value.upper()
    elif match.group("ring") or _RING_WORDS.search(window):
        system = "ring"
    elif _BELT_WORDS.search(window):
        system = "belt"
    else:
        system = "garment"
    return Size(value, system), [match.span()]


_AMOUNT_MARK, _SIZE_MARK = "zzamountzz", "zzsizezz"
"""Words put in place of an amount or a size, so the words around them can be found."""


def _marked(text: str, spans: Iterable[tuple[int, int]], mark: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = f"{text[:start]} {mark} {text[end:]}"
    return text


@dataclass
class _Words:
    """The folded words of a message, each with the word it came from as written, and
    which of them the ranking query leaves out.
    """

    folded: list[str]
    written: list[str]
    language: str
    masked: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, text: str, language: str) -> _Words:
        folded: list[str] = []
        written: list[str] = []
        for raw in re.findall(r"[^\s]+", text):
            for part in fold(raw).split():
                folded.append(part)
                written.append(raw.strip(".,;:!?()\"«»"))
        return cls(folded, written, language)

    def query(self) -> str:
        """The words left for the ranking."""
        return " ".join(w for i, w in enumerate(self.folded) if i not in self.masked)

    def mask_amounts(self) -> None:
        """Leave amounts and sizes out of the query, with the budget words around them
        ("under", "moins de", "massimo", "800 max").
        """
        before = {phrase for phrase, _ in _BEFORE}
        after = {phrase for phrase, _ in _AFTER}
        for index, word in enumerate(self.folded):
            if word not in (_AMOUNT_MARK, _SIZE_MARK):
                continue
            self.masked.add(index)
            for size in range(1, 6):
                if index - size >= 0 and " ".join(self.folded[index - size:index]) in before:
                    self.masked.update(range(index - size, index))
                if " ".join(self.folded[index + 1:index + 1 + size]) in after:
                    self.masked.update(range(index + 1, index + 1 + size))

    def table(self, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The language's words over the other languages' (a borrowed word still counts)."""
        merged: dict[str, Any] = {}
        for code in (*(c for c in tables if c != self.language), self.language):
            merged.update(tables.get(code, {}))
        return merged

    def phrase_at(self, index: int, phrases: Mapping[str, Any], longest: int = 4) -> tuple[str, int] | None:
        """The longest phrase of ``phrases`` starting at ``index``, with its length."""
        for size in range(longest, 0, -1):
            phrase = " ".join(self.folded[index:index + size])
            if len(self.folded[index:index + size]) == size and phrase in phrases:
                return phrase, size
        return None


def _modifiers() -> frozenset[str]:
    colours = {w for table in _COLOURS.values() for phrase in table for w in phrase.split()}
    return frozenset(_ARTICLES | _ADJECTIVES | _POSSESSIVES | colours)


_MODIFIERS: Final = _modifiers()


_CONJUNCTIONS: Final = frozenset({"and", "or", "et", "ou", "e", "o", "ed"})


def _governed(words: _Words, index: int, garment: bool) -> str | None:
    """What governs the noun at ``index``: ``own`` (a possessive: her piece), ``pair``
    (a pairing or wearing word: what she pairs with), ``not`` (a negation), or None.
    After "and" / "et" / "e", the noun shares the governor of the noun before it ("with
    my blazer and a grey coat").
    """
    kinds = words.table(_KIND_WORDS)
    for back in range(index - 1, max(-1, index - 5), -1):
        word = words.folded[back]
        if word in _POSSESSIVES:
            return "own"
        if word in _NEGATIONS:
            return "not"
        if word in _PAIRING or (garment and word in _WEARING):
            return "pair"
        if word in _CONJUNCTIONS:
            previous = next((j for j in range(back - 1, max(-1, back - 5), -1) if words.folded[j] in kinds), None)
            return _governed(words, previous, garment) if previous is not None else None
        if word not in _MODIFIERS and not (back and words.written[back][:1].isupper()):
            break  # a name ("my Lune card holder") is no break
    return None


def _kinds(words: _Words) -> tuple[list[str], list[tuple[int, int, str]]]:
    """The kinds she asks for, and every kind noun (start, length, governed-by)."""
    table = words.table(_KIND_WORDS)
    asked: list[str] = []
    nouns: list[tuple[int, int, str]] = []
    index = 0
    while index < len(words.folded):
        found = words.phrase_at(index, table)
        if found is None:
            index += 1
            continue
        phrase, size = found
        kind = table[phrase]
        if kind == "tie" and index and words.folded[index - 1] in {"black", "white", "bow"}:
            index += size
            continue
        governed = _governed(words, index, kind in _GARMENT_KINDS)
        nouns.append((index, size, governed or "asked"))
        if governed is None and kind not in asked:
            asked.append(kind)
        index += size
    return asked, nouns


def _mask_own_pieces(words: _Words, nouns: Sequence[tuple[int, int, str]]) -> None:
    """Leave her own pieces ("my navy blazer", "mon blazer marine") out of the query."""
    colours = {w for table in _COLOURS.values() for phrase in table for w in phrase.split()}
    for start, size, governed in nouns:
        if governed != "own":
            continue
        first = start
        while first > 0:
            first -= 1
            if words.folded[first] in _POSSESSIVES:
                break  # "my Lune card holder": up to her "my"
        last = start + size
        while last < len(words.folded) and (words.folded[last] in colours | _ADJECTIVES
                                            or words.written[last][:1].isupper()):
            last += 1  # "mon blazer marine", "la mia giacca Tailleur"
        words.masked.update(range(first, last))


def _colours(words: _Words, nouns: Sequence[tuple[int, int, str]]) -> list[Colour]:
    """Colours said of what she asks for: "in black", "a black bag", "un sac noir"."""
    table = words.table(_COLOURS)
    asked_at = {i for start, size, governed in nouns if governed == "asked" for i in range(start, start + size)}
    found: list[Colour] = []
    index = 0
    while index < len(words.folded):
        hit = words.phrase_at(index, table, longest=2)
        if hit is None or (hit[0] == "or" and (index == 0 or words.folded[index - 1] != "en")):
            index += 1  # French "or" is gold only in "en or" (else "now", or English "or")
            continue
        phrase, size = hit
        if _colour_asked(words, index, size, asked_at):
            colour = Colour(" ".join(words.written[index:index + size]), table[phrase])
            if colour.family not in {c.family for c in found}:
                found.append(colour)
        index += size
    return found


def _colour_asked(words: _Words, index: int, size: int, asked_at: set[int]) -> bool:
    if _NEGATIONS & set(words.folded[max(0, index - 2):index]):
        return False  # "not black", "pas de noir"
    before = words.folded[index - 1] if index else ""
    after = words.folded[index + size] if index + size < len(words.folded) else ""
    if f"{before} {words.folded[index]}" in {"black tie", "white tie"} or after == "tie":
        return False
    if before == "en" and words.folded[index] == "or":
        return True
    if before in _COLOUR_CUE and _governed(words, index - 1, False) not in {"own", "pair", "not"}:
        return True
    near = range(max(0, index - 3), min(len(words.folded), index + size + 3))
    return any(i in asked_at for i in near)


def _is_place(words: _Words, start: int, size: int, nouns: Sequence[int]) -> bool:
    """A place name, unless it names a piece ("the Capri shirt", "la chemise Capri")."""
    before = words.folded[max(0, start - 2):start]
    locatives = _LOCATIVES.get(words.language, _LOCATIVES["en"])
    if before and (before[-1] in locatives or (len(before) == 2 and before[0] in locatives
                                               and before[1] in _ARTICLES)):
        return True
    after = set(range(start + size, start + size + 3))
    if after & set(nouns) or (start and (start - 1 in nouns or words.folded[start - 1] in _NAME_NOUNS)):
        return False
    return True


def _places(words: _Words, nouns: Sequence[tuple[int, int, str]]) -> list[str]:
    starts = [start for start, _, _ in nouns]
    found: list[str] = []
    for index in range(len(words.folded)):
        for place in _PLACES:
            size = len(place)
            if tuple(words.folded[index:index + size]) != place or index in words.masked:
                continue
            if _is_place(words, index, size, starts):
                found.append(" ".join(words.written[index:index + size]))
                words.masked.update(range(index, index + size))
    return found


def parse_constraints(text: str, language: str | None = "en") -> Constraints:
    """What ``text`` asks a suggestion to respect (see the module's docstring)."""
    lang = supported(language)
    plain = _normalised(text or "")
    size, size_spans = _size(plain)
    sized = _marked(plain, size_spans, _SIZE_MARK)
    budget, spans = _budget(sized)
    words = _Words.of(_marked(sized, spans, _AMOUNT_MARK), lang)
    words.mask_amounts()
    kinds, nouns = _kinds(words)
    repeat = bool(_REPEAT & set(words.folded))
    if not repeat:
        _mask_own_pieces(words, nouns)
    places = _places(words, nouns)
    gift = _gift_talk(words)
    recipients = _recipients(words, plain, gift)
    occasions = _occasions(words)
    words.masked.update(i for i, w in enumerate(words.folded) if w in _GIFT)
    return Constraints(
        text=text, language=lang, query=words.query(),
        budget=budget, currency=budget.currency if budget else None,
        recipients=tuple(recipients), occasions=tuple(occasions),
        season=_season(words), size=size, colours=tuple(_colours(words, nouns)), kinds=tuple(kinds),
        places=tuple(places), repeat=repeat, gift=gift,
    )


def _recipients(words: _Words, text: str, gift: bool) -> list[Recipient]:
    """Who the piece is for: a relation after "for", "pour", "per", "a" … or whose
    birthday it is; never someone whose wedding she attends (unless it is a gift).
    """
    table = words.table(_RELATIONS)
    age = _AGE.search(text)
    young = age is not None and int(age.group(1)) < 13
    found: list[Recipient] = []
    for index, word in enumerate(words.folded):
        entry = table.get(word)
        if entry is None or not _recipient_context(words, index, entry[0], gift):
            continue
        relation, gender, child = entry
        before = words.folded[max(0, index - 2):index]
        if relation in _YOUNG_RELATIONS and (young or set(before) & _CHILD_WORDS):
            child = True
        if age is not None and not young and relation in _YOUNG_RELATIONS:
            child = False  # "a 15 year old girl": not a child's size
        recipient = Recipient(relation, gender, child)
        if recipient not in found:
            found.append(recipient)
        # who it is for says nothing of the piece: "mother" would rank "mother-of-pearl"
        words.masked.update(i for i in range(max(0, index - 1), min(len(words.folded), index + 2))
                            if i == index or words.folded[i] in _POSSESSIVES | {"s"})
    return [r for r in found if not r.is_self] or [r for r in found if r.is_self]


_GIFT_OCCASIONS: Final = frozenset({"birthday", "anniversary", "retirement", "christmas", "mothers_day",
                                     "fathers_day", "valentines", "graduation"})
_OF: Final = frozenset({"de", "di", "del", "della", "dello", "of", "d"})
_PRONOUNS: Final = frozenset({"him", "her", "his", "lui", "elle", "lei"})
_GENDER_WORDS: Final = frozenset({"man", "woman"})


def _whose_occasion(words: _Words, index: int) -> str | None:
    """The occasion word that belongs to the relation at ``index``: "my sister's
    wedding", "her birthday", "le mariage de ma sœur", "il compleanno di mio marito".
    """
    after = words.folded[index + 1:index + 3]
    if after[:1] == ["s"]:
        after = after[1:]
    if after and (words.folded[index] in {"her", "his"} or words.folded[index + 1:index + 2] == ["s"]):
        return after[0]
    before = [w for w in words.folded[max(0, index - 4):index] if w not in _POSSESSIVES | (_ARTICLES - _OF)]
    if len(before) >= 2 and before[-1] in _OF:
        return before[-2]
    return None


def _recipient_context(words: _Words, index: int, relation: str, gift: bool) -> bool:
    """Whether the relation word at ``index`` names who the piece is for: after "for",
    "pour", "per", "a" … (a pronoun right after it), or whose birthday it is; not someone
    whose wedding or dinner she attends, unless she speaks of a gift.
    """
    occasion = _whose_occasion(words, index)
    if occasion is not None and (occasion in _ATTENDED or _OCCASIONS.get(occasion) in _GIFT_OCCASIONS):
        return gift or occasion not in _ATTENDED
    before = _words_before(words, index)
    if words.folded[index] in _PRONOUNS:
        return bool(before) and before[-1] in _FOR | _TO | _GIVE
    previous = words.folded[index - 1] if index else ""
    if relation in _GENDER_WORDS and (previous in {"da", "a", "an"} or previous in _ALL_KIND_WORDS):
        return True  # "orologio da uomo", "montre femme", "a men's watch"
    cues = _FOR | _TO if words.language != "en" else _FOR
    if set(before) & cues:
        return True
    # "per l'anniversario con mia moglie": a gift's occasion, and her own relation
    return index > 0 and words.folded[index - 1] in _POSSESSIVES and _gift_talk(words)


_AGE_WORDS: Final = frozenset({"year", "years", "old", "yo", "ans", "an", "anni", "anno", "de", "di", "best", "dear",
                               "meilleure", "meilleur", "chere", "cher", "migliore", "cara", "caro", "new", "nouvelle",
                               "nouveau", "nuova", "nuovo", "s"})


def _words_before(words: _Words, index: int, count: int = 3) -> list[str]:
    """The ``count`` words before a relation, past its possessive, article, age and
    endearments ("for my 8 year old daughter", "à ma meilleure amie").
    """
    skipped = _AGE_WORDS | _POSSESSIVES | _ARTICLES | _CHILD_WORDS
    if words.language != "en":
        skipped -= _TO  # "à ma mère", "a mia madre"
    out: list[str] = []
    for back in range(index - 1, max(-1, index - 9), -1):
        word = words.folded[back]
        if word.isdigit() or word in skipped:
            if not out:
                continue
        out.insert(0, word)
        if len(out) == count:
            break
    return out


def _gift_talk(words: _Words) -> bool:
    """The message speaks of a gift, or of an occasion one gives for (a birthday, Mother's
    Day …) that is not her own ("for my birthday" is hers).
    """
    if _GIFT & set(words.folded):
        return True
    phrases = {" ".join(k): v for k, v in _OCCASION_PHRASES.items()}
    for index, word in enumerate(words.folded):
        hit = words.phrase_at(index, phrases, longest=3)
        occasion = phrases[hit[0]] if hit else _OCCASIONS.get(word)
        back = index - 1
        while back >= 0 and words.folded[back] in {"own", "wedding", "propre"}:
            back -= 1  # "my own wedding anniversary"
        own = back >= 0 and words.folded[back] in _POSSESSIVES | {"our", "notre", "nostro", "nostra"}
        if occasion in _GIFT_OCCASIONS and not own:
            return True
    return False


def _occasions(words: _Words) -> list[str]:
    """The occasions she names; those one gives a present for (a birthday, Christmas …)
    say nothing of the piece and leave the query.
    """
    found: list[str] = []
    for index in range(len(words.folded)):
        hit = words.phrase_at(index, {" ".join(k): v for k, v in _OCCASION_PHRASES.items()}, longest=3)
        occasion = _OCCASION_PHRASES[tuple(hit[0].split())] if hit else _OCCASIONS.get(words.folded[index])
        if occasion in _GIFT_OCCASIONS:
            words.masked.update(range(index, index + (hit[1] if hit else 1)))
        if occasion and occasion not in found:
            found.append(occasion)
    if "anniversary" in found and "birthday" in found and not any(
            w in {"birthday", "compleanno", "bday"} for w in words.folded):
        found.remove("birthday")  # "anniversaire de mariage"
    return found


def _season(words: _Words) -> str | None:
    for index, word in enumerate(words.folded):
        if word in _SEASONS:
            return _SEASONS[word]
        before = words.folded[index - 1] if index else ""
        if word in _SEASON_AFTER and before in {"d", "l", "cet", "en", "this", "the", "in", "last", "next"}:
            return _SEASON_AFTER[word]
    return None


# --------------------------------------------------------------------------- the catalog
_WOMEN_NAMES: Final = ("dress", "gown", "skirt", "blouse", "clutch", "mini bag", "bucket bag", "saddle bag",
                       "earrings", "ear cuffs", "necklace", "pendant", "bangle", "bracelet", "scarf")
_WOMEN_DESCRIPTIONS: Final = ("wrap front", "high waist", "lipstick", "bodice", "neckline")
_MEN_NAMES: Final = ("cufflinks", "tie", "men s", "homme", "uomo")
WOMEN_RING_SIZES_UP_TO: Final = 57
"""Rings made only up to this French size are cut for women's hands."""
WOMEN_WATCH_UNDER_MM: Final = 36
"""A watch case under this diameter is a women's watch."""


def _has(text: str, phrases: Iterable[str]) -> bool:
    padded = f" {text} "
    return any(f" {phrase} " in padded for phrase in phrases)


def wearers(product: ProductFacts) -> frozenset[str]:
    """Who the piece is cut for: ``{"woman"}``, ``{"man"}`` or both (see the module's
    docstring). Never a child: the catalog makes no children's sizes.
    """
    name, description = fold(product.name), fold(product.description)
    if _has(name, _MEN_NAMES):
        return frozenset({MAN})
    if _has(name, _WOMEN_NAMES) or _has(description, _WOMEN_DESCRIPTIONS):
        return frozenset({WOMAN})
    numbers = [int(m.group(1)) for s in product.sizes if (m := re.match(r"\s*(\d+)", s))]
    if _has(name, ("ring",)) and numbers and max(numbers) <= WOMEN_RING_SIZES_UP_TO:
        return frozenset({WOMAN})
    if product.category == "watches" and any("mm" in s for s in product.sizes) and numbers \
            and max(numbers) < WOMEN_WATCH_UNDER_MM:
        return frozenset({WOMAN})
    return ANYONE


def kind_matches(product: ProductFacts, kind: str) -> bool:
    """Whether the piece is of the kind asked for (:data:`KINDS`)."""
    categories, names = KINDS.get(kind, (frozenset(), (kind,)))
    return product.category in categories or _has(fold(product.name), names)


def _size_fits(product: ProductFacts, size: Size) -> bool:
    """A size rules out only pieces sized in the same way (a garment size says nothing of
    a watch or a bag).
    """
    name = fold(product.name)
    if size.system == "garment" and product.category != "ready_to_wear":
        return True
    if size.system == "ring" and not _has(name, ("ring",)):
        return True
    if size.system == "belt" and not _has(name, ("belt",)):
        return True
    if size.system == "letter" and not any(s.strip().upper() in {"XS", "S", "M", "L", "XL"} for s in product.sizes):
        return True
    if all(not re.match(r"\s*\d", s) for s in product.sizes) and size.system != "letter":
        return True  # "one size"
    return any(fold(s) == fold(size.value) for s in product.sizes)


def client_gender(client: ClientContext) -> str | None:
    """The client's gender as her title says it (Ms, Mme, Signora …), else None (Mx, Dr,
    someone not in the book).
    """
    title = fold(client.title or "")
    if title in {"ms", "mrs", "miss", "mme", "mlle", "madame", "mademoiselle", "signora", "signorina", "sig ra"}:
        return WOMAN
    if title in {"mr", "m", "monsieur", "signor", "signore", "sig"}:
        return MAN
    return None


@dataclass(frozen=True)
class Fit:
    """The constraints of one message applied to the catalog for one client.

    ``named``: the pieces her message names (she may ask for one she owns).
    """

    constraints: Constraints
    client: ClientContext
    named: frozenset[str] = frozenset()

    @classmethod
    def of(cls, constraints: Constraints, client: ClientContext, products: Sequence[ProductFacts]) -> Fit:
        """The fit, with the piece her words name (by name, places aside) if any."""
        named = best_name_match(constraints.query, [(p.id, p.name) for p in products])
        return cls(constraints, client, frozenset({named}) if named else frozenset())

    @property
    def currency(self) -> str:
        """The currency of the budget: hers if she named one, else the client's."""
        budget = self.constraints.budget
        return (budget.currency if budget and budget.currency else None) or self.client.currency

    def price(self, product: ProductFacts) -> int | None:
        """The piece's price in :attr:`currency` (None: the catalog has none in it)."""
        return {"EUR": product.price_eur, "GBP": product.price_gbp}.get(self.currency)

    def recipient_fits(self, product: ProductFacts) -> bool:
        """Whether the piece suits everyone it is for (see the module's docstring)."""
        cut = wearers(product)
        for recipient in self.constraints.for_whom:
            if recipient.child:
                return False
            gender = client_gender(self.client) if recipient.is_self else recipient.gender
            if gender is not None and gender not in cut:
                return False
            if gender is None and not recipient.is_self and not self.constraints.kinds and cut != ANYONE:
                return False
        return True

    def reasons(self, product: ProductFacts) -> tuple[str, ...]:
        """What the piece breaks: ``budget``, ``recipient``, ``owned``, ``kind``, ``size``,
        ``colour``; empty when it fits.
        """
        c = self.constraints
        out: list[str] = []
        price = self.price(product)
        if c.budget is not None and (price is None or not c.budget.admits(price)):
            out.append("budget")
        if not self.recipient_fits(product):
            out.append("recipient")
        if product.id in self.client.owned and product.id not in self.named:
            out.append("owned")
        if c.kinds and not any(kind_matches(product, kind) for kind in c.kinds):
            out.append("kind")
        if c.size is not None and not _size_fits(product, c.size):
            out.append("size")
        if c.colours and not any(product.colours_matching(colour.family) for colour in c.colours):
            out.append("colour")
        return tuple(out)

    def admits(self, product: ProductFacts) -> bool:
        """Whether the piece respects every constraint."""
        return not self.reasons(product)
