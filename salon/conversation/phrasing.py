"""How the maison addresses a client and says a day, a time or a price, in English,
French and Italian.

Days, months and prices come from the CLDR data Babel ships (never from the server's
locales): English is said as in London (``en_GB``), French as in Paris (``fr_FR``),
Italian as in Milan (``it_IT``).

- A day: "Saturday 5 December", "samedi 5 décembre", "sabato 5 dicembre"; for a button,
  "Sat 5 Dec", "sam. 5 déc.", "sab 5 dic".
- A time: "15:00" in English and Italian; in French the maison's house style, "15 h" on
  the hour and "15 h 30" otherwise, with ordinary spaces (CLDR's own French short time is
  "15:00").
- A price: "€2,450" and "£1,950" in English, "2 450 €" in French, "2.450 €" in Italian,
  without decimals for a whole amount. The spaces are kept as Babel gives them: French
  groups thousands with a narrow no-break space (U+202F), and French and Italian put a
  no-break space (U+00A0) between the amount and its trailing symbol, so a price never
  breaks across two lines on a phone. Tests compare with those characters, not with
  plain spaces.
- A list: "Paris, London and Milan", "à Paris, à Londres et à Milan" (French repeats its
  preposition), "a Parigi, Londra e Milano".
- A client: "Ms Laurent", "Madame Laurent", "Signora Rossi" (the formal register in every
  language).
- A piece she names in her own words, without the article or possessive she put before
  it: "the Alma bag" is said back as "Alma bag" ("your Alma bag", "votre sac Alma").
- The client's own advisor: "your client advisor Sophie", "votre conseillère Sophie",
  "il Suo consulente James", the noun agreeing with the advisor's gender as the book
  records it (her first name alone when it does not).

:func:`pick` chooses a phrase from a table keyed by language, English when the table has
no phrase for it: every module keeps its words in such tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Final, TypeVar

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency

from salon.clock import require_aware
from salon.conversation.language import SUPPORTED, supported
from salon.graphemes import shorten
from salon.integrations.crm import ClientRecord

__all__ = [
    "LOCALES",
    "SUPPORTED",
    "address",
    "agreed",
    "button_title",
    "bare_name",
    "gender_of",
    "pick",
    "say_city",
    "say_date_short",
    "say_day",
    "say_day_short",
    "say_list",
    "say_moment_short",
    "say_price",
    "say_time",
    "supported",
    "your_advisor",
]

T = TypeVar("T")

LOCALES: Final = {"en": "en_GB", "fr": "fr_FR", "it": "it_IT"}
"""The CLDR locale each language is written in."""
BUTTON_LIMIT: Final = 20
"""WhatsApp's limit on a quick-reply button's title, in characters."""

_DAY: Final = "EEEE d MMMM"
_DAY_SHORT: Final = "EEE d MMM"
_DATE_SHORT: Final = "d MMM"
_FR_HOUR: Final = "H 'h'"
_FR_HOUR_MINUTES: Final = "H 'h' mm"

# The maison's cities as each language names them (English: as the book writes them).
_CITIES: Final[dict[str, dict[str, str]]] = {
    "en": {},
    "fr": {"London": "Londres", "Milano": "Milan", "Londra": "Londres", "Parigi": "Paris"},
    "it": {"Paris": "Parigi", "London": "Londra", "Milan": "Milano", "Londres": "Londra"},
}

# The CRM's titles (and the Italian ones a hosted CRM may send) → how each language says
# them. "Dr" tells no gender: Italian then says the full name rather than guess between
# "Dottor" and "Dottoressa".
_TITLE_KEYS: Final = {
    "Ms": "f", "Mme": "f", "Mrs": "f", "Madame": "f", "Sig.ra": "f", "Signora": "f",
    "Mr": "m", "M.": "m", "Monsieur": "m", "Sig.": "m", "Signor": "m", "Signore": "m",
    "Dr": "dr", "Dott.ssa": "dr_f", "Dottoressa": "dr_f", "Dott.": "dr_m", "Dottor": "dr_m",
    "Dottore": "dr_m",
}
_TITLES: Final[dict[str, dict[str, str]]] = {
    "en": {"f": "Ms", "m": "Mr", "dr": "Dr", "dr_f": "Dr", "dr_m": "Dr"},
    "fr": {"f": "Madame", "m": "Monsieur", "dr": "Docteur", "dr_f": "Docteur", "dr_m": "Docteur"},
    "it": {"f": "Signora", "m": "Signor", "dr_f": "Dottoressa", "dr_m": "Dottor"},
}
_GENDERS: Final = {"f": "f", "dr_f": "f", "m": "m", "dr_m": "m"}
_YOUR_ADVISOR: Final[dict[str, dict[str, str]]] = {
    "en": {"f": "your client advisor {name}", "m": "your client advisor {name}"},
    "fr": {"f": "votre conseillère {name}", "m": "votre conseiller {name}"},
    "it": {"f": "la Sua consulente {name}", "m": "il Suo consulente {name}"},
}
_AND: Final[dict[str, str]] = {"en": "and", "fr": "et", "it": "e"}
_PREPOSITION_EACH: Final = frozenset({"fr", "it"})
"""The languages that say a list's preposition before every item."""
# English keeps "Mrs" where the book says "Mme" (a married title the client chose).
_EN_MRS: Final = frozenset({"Mme", "Mrs", "Madame"})


def pick(table: Mapping[str, T], language: str | None) -> T:
    """The entry of ``table`` for ``language``, else its English one."""
    found = table.get(supported(language))
    return found if found is not None else table["en"]


_DETERMINER: Final = re.compile(
    r"^(?:the|my|our|a|an|this|that|le|la|les|mon|ma|mes|un|une|ce|cette|il|lo|i|gli|mio|mia|"
    r"miei|mie|uno|una|questo|questa)\s+|^(?:l|un)['’]\s*", re.IGNORECASE)


def bare_name(words: str) -> str:
    """A piece as she named it, without a leading article or possessive ("the Alma bag",
    "mon sac Alma", "la mia borsa"), so that "your {piece}" reads right; unchanged when
    nothing would remain.
    """
    text = " ".join(words.split())
    stripped = text
    for _ in range(2):  # "la mia borsa": an article, then a possessive
        stripped = _DETERMINER.sub("", stripped, count=1).strip()
    return stripped or text


def button_title(*candidates: str) -> str:
    """The first of ``candidates`` that fits a button (20 characters), else the last one
    cut between characters.
    """
    for title in candidates:
        if len(title) <= BUTTON_LIMIT:
            return title
    return shorten(candidates[-1], BUTTON_LIMIT)


@lru_cache(maxsize=8)
def _locale(language: str | None) -> Locale:
    return Locale.parse(LOCALES[supported(language)])


def address(record: ClientRecord, language: str) -> str:
    """"Ms Laurent" / "Madame Laurent" / "Signora Rossi"; without a title the language can
    say (Mx, or "Dr" in Italian), the full name.
    """
    key = _TITLE_KEYS.get(record.title.strip())
    lang = supported(language)
    title = _TITLES[lang].get(key) if key else None
    if lang == "en" and record.title.strip() in _EN_MRS:
        title = "Mrs"
    if title is None:
        return f"{record.first_name} {record.last_name}"
    return f"{title} {record.last_name}"


def gender_of(record: ClientRecord | None) -> str | None:
    """``"f"`` or ``"m"`` as the client's title tells it (Madame, Mr, Signora, Dott.ssa…);
    None when it does not (no title, Mx, Dr): the words that agree with her are then
    phrased so that they need not ("Viendrez-vous avec quelqu'un ?").
    """
    if record is None:
        return None
    return _GENDERS.get(_TITLE_KEYS.get(record.title.strip(), ""))


def agreed(words: Mapping[str, str], key: str, gender: str | None) -> str:
    """``words[key]`` in the form that agrees with ``gender`` (``key_f``, ``key_m``) when
    the language has one, else the neutral ``words[key]``.
    """
    return (words.get(f"{key}_{gender}") if gender else None) or words[key]


def say_city(city: str, language: str) -> str:
    """A city as the client's language names it: "London" / "Londres" / "Londra"."""
    return pick(_CITIES, language).get(city, city)


def say_list(items: Sequence[str], language: str | None, preposition: str = "") -> str:
    """``items`` as a sentence lists them, "and" before the last: "Paris, London and
    Milan" / "Paris, Londres et Milan" / "Parigi, Londra e Milano". A ``preposition``
    ("in", "à", "de", "a", "di") goes before the first item in English and, as careful
    French and Italian have it, before every item there: "in London and Paris", "à
    Paris, à Londres et à Milan", "di Parigi e di Londra".
    """
    lang = supported(language)
    said = [f"{preposition} {item}" if preposition and (i == 0 or lang in _PREPOSITION_EACH)
            else item for i, item in enumerate(items)]
    if len(said) <= 1:
        return "".join(said)
    return f"{', '.join(said[:-1])} {pick(_AND, language)} {said[-1]}"


def say_day(when: date | datetime, language: str) -> str:
    """"Saturday 5 December" / "samedi 5 décembre" / "sabato 5 dicembre" (a datetime is
    said in its own time zone).
    """
    return format_date(when, _DAY, locale=_locale(language))


def say_day_short(when: date | datetime, language: str) -> str:
    """"Sat 5 Dec" / "sam. 5 déc." / "sab 5 dic" (for button titles)."""
    return format_date(when, _DAY_SHORT, locale=_locale(language))


def say_date_short(when: date | datetime, language: str) -> str:
    """"5 Dec" / "5 déc." / "5 dic" (for button titles that also name a place)."""
    return format_date(when, _DATE_SHORT, locale=_locale(language))


def say_time(when: datetime, language: str) -> str:
    """"15:00" / "15 h" ("15 h 30") / "15:00", in ``when``'s own time zone."""
    require_aware(when, "when")
    if supported(language) == "fr":
        pattern = _FR_HOUR if when.minute == 0 else _FR_HOUR_MINUTES
        return format_time(when, pattern, locale=_locale(language))
    return format_time(when, "short", locale=_locale(language))


def say_moment_short(when: datetime, language: str) -> str:
    """A day and time for a button title, at most 20 characters: "Sat 5 Dec, 15:00",
    "sam. 5 déc., 15 h 30", "sab 5 dic, 15:00"; the weekday is left out where both would
    not fit ("30 sept., 15 h 30").
    """
    hour = say_time(when, language)
    return button_title(f"{say_day_short(when, language)}, {hour}",
                        f"{say_date_short(when, language)}, {hour}")


def say_price(amount: int | Decimal | float, currency: str, language: str) -> str:
    """A price as the client's locale writes it: "€2,450", "£1,950" (en), "2 450 €" (fr),
    "2.450 €" (it); a whole amount without decimals, another with the currency's own
    ("€2,450.50"). The spaces are Babel's no-break ones (see the module docstring).
    """
    locale = _locale(language)
    value = Decimal(str(amount)) if isinstance(amount, float) else amount
    if Decimal(value) == Decimal(value).to_integral_value():
        pattern = locale.currency_formats["standard"].pattern
        whole = pattern.replace(".00", "").replace(".##", "")
        said = format_currency(int(value), currency, format=whole, locale=locale,
                               currency_digits=False)
    else:
        said = format_currency(value, currency, locale=locale)
    # The maison's own currencies keep their plain sign in every language ("1 950 £", not
    # CLDR's French "£GB").
    plain = _PLAIN_SIGNS.get(currency)
    local = locale.currency_symbols.get(currency)
    return said.replace(local, plain) if plain and local and local != plain else said


_PLAIN_SIGNS: Final = {"EUR": "€", "GBP": "£"}


def your_advisor(language: str | None, name: str, gender: str | None, *,
                 start: bool = False) -> str:
    """The client's own advisor as a sentence's subject: "votre conseillère Sophie", "il
    Suo consulente James"; ``name`` alone when ``gender`` is neither "f" nor "m" (the noun
    would have to guess). ``start`` capitalises it for the head of a sentence.
    """
    form = pick(_YOUR_ADVISOR, language).get(gender or "")
    said = form.format(name=name) if form else name
    return said[:1].upper() + said[1:] if start else said
