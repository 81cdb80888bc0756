"""What a client asks about the boutiques, answered from the book alone: opening hours,
address and telephone, the services to book, and whether the maison has a boutique in a
city; in English, French and Italian.

:func:`read_question` reads the message: what she asks (hours, address, services, "do you
have a boutique in…"), which of the maison's boutiques she names (by id, city or the
city as each language says it), and whether she names a place where the maison has none.
:func:`boutique_answer` composes the one reply, two or three sentences and a button to
book a visit:

- a boutique named: that one; none named: her home boutique when the book knows it,
  else every boutique, one line each;
- a place with no boutique: where the boutiques are, and nothing about that place;
- hours: the week at a glance, the usual hours with their exceptions ("Monday to
  Saturday, 10:00 to 19:00 (from 10:30 on Mondays, until 20:00 on Thursdays); closed on
  Sundays"), then whether it is open at this moment or when it next opens, in the
  boutique's own time zone;
- a question that is none of these: where the boutiques are, with their hours.

Every hour, address, number and service comes from the :class:`Boutique` records and the
service labels; the words around them come from the tables below.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Final

import phonenumbers
from babel import Locale

from salon.clock import require_aware
from salon.conversation.appointments import find_boutique, find_service
from salon.conversation.greetings import Reply
from salon.conversation.language import SUPPORTED, supported
from salon.conversation.phrasing import LOCALES, pick, say_city, say_day, say_list, say_time
from salon.integrations.bookings import Boutique
from salon.integrations.catalog import fold

__all__ = [
    "BOOK_INTENT",
    "Question",
    "boutique_answer",
    "read_question",
    "say_phone",
    "say_week",
    "unavailable",
]

BOOK_INTENT: Final = "book_appointment"
"""The intent the booking button sends; its ``boutique`` entity fills the form's slot."""
MAX_LINES: Final = 3
"""Beyond this many boutiques, a reply names their cities instead of one line each."""
MAX_SENTENCES: Final = 3

#: Words that tell what she asks, accent-free and lower-case (matched as whole words or
#: phrases of the folded message).
_TOPIC_WORDS: Final[dict[str, frozenset[str]]] = {
    "address": frozenset({
        "address", "addresses", "where", "located", "location", "situated", "find you",
        "directions", "get there", "get to you", "near", "nearest", "closest", "phone",
        "telephone", "call", "contact", "reach", "adresse", "joindre", "appeler",
        "contacter", "telefono", "chiamare", "contattare", "adresses", "situe", "situee",
        "se trouve", "vous trouver", "acceder", "indirizzo", "indirizzi", "dove", "si trova",
        "trovarvi", "raggiungervi",
    }),
    "hours": frozenset({
        "hours", "hour", "opening", "open", "opens", "close", "closes", "closing", "closed",
        "what time", "horaire", "horaires", "heure", "heures", "ouvert", "ouverte", "ouverts",
        "ouvertes", "ouvre", "ouvrez", "ouvrent", "ouverture", "ferme", "fermez", "ferment",
        "fermee", "fermes", "fermees", "fermeture", "orari", "orario", "aperto", "aperta",
        "aperti", "aperte", "apre", "aprite", "aprono", "apertura", "chiude", "chiudete",
        "chiudono", "chiuso", "chiusa", "chiusi", "chiuse", "chiusura", "che ora",
    }),
    "services": frozenset({
        "service", "services", "offer", "offers", "offering", "provide", "what can i book",
        "what can i do", "what can you do", "prestation", "prestations", "proposez", "propose",
        "proposent", "offrez", "offre", "offrent", "que peut on faire", "que puis je faire",
        "servizio", "servizi", "offrite", "offrono", "proponete", "propone",
        "cosa si puo fare", "cosa posso fare", "riparazioni",
    }),
}
#: Days the weekly hours may not hold: the book has no hours for them.
_HOLIDAY_WORDS: Final = frozenset({
    "holiday", "holidays", "bank holiday", "christmas", "boxing day", "easter", "new year",
    "new year s", "ferie", "jour ferie", "jours feries", "noel", "paques", "nouvel an",
    "toussaint", "festivo", "festivi", "festivita", "natale", "pasqua", "pasquetta",
    "capodanno", "ferragosto", "santo stefano",
})
#: Service words the booking form does not read (it reads "riparazione", not its plural).
_MORE_SERVICE_WORDS: Final = {"riparazioni": "repair_dropoff"}
#: "Do you have / is there / avez-vous / avete / c'è …" together with a word for a shop.
_HAVE_WORDS: Final = frozenset({
    "do you have", "have you got", "do you still have", "is there", "are there",
    "avez vous", "vous avez", "y a t il", "existe t il", "avete", "c e", "ci sono",
    "esiste", "avete ancora",
})
_SHOP_WORDS: Final = frozenset({
    "boutique", "boutiques", "store", "stores", "shop", "shops", "magasin", "magasins",
    "negozio", "negozi", "showroom", "maison", "point de vente", "points de vente",
    "punto vendita", "punti vendita",
})
#: Words that ask about the boutiques in general, not her own: "which cities", "your
#: boutiques", "vos boutiques", "le vostre boutique".
_ALL_WORDS: Final = frozenset({
    "boutiques", "stores", "shops", "cities", "magasins", "villes", "points de vente",
    "le vostre boutique", "le boutique", "quali boutique", "negozi", "citta", "punti vendita",
})
#: "Où" loses its accent when folded and would read as "ou" (or).
_WHERE_FR: Final = re.compile(r"(?<!\w)où(?!\w)", re.IGNORECASE)

#: Words before a place: "in Rome", "à Genève", "a Roma", "di Roma". "a" is French or
#: Italian only (in English it is the article).
_PLACE_BEFORE: Final = frozenset({"in", "at", "near", "around", "à", "en", "au", "aux", "dans",
                                  "vers", "près", "di", "presso", "vicino"})
_PLACE_BEFORE_A: Final = frozenset({"fr", "it"})
#: Words that may follow those without being a place (folded): the shop itself, people,
#: seasons and feasts, languages, and the little words of a lower-case question.
_NOT_PLACES: Final = frozenset("""
    boutique boutiques store stores shop shops magasin magasins negozio negozi showroom
    maison solenne atelier salon
    christmas noel natale easter paques pasqua capodanno
    weekend weekends week end lunch midi pranzo evening soir sera morning matin mattina
    english french italian anglais francais italien inglese francese italiano
    the a an my your our this that which what any some other me you us here there home
    town city centre center le la les l un une des ma mon votre vos nos notre ville cette
    ce quelle quel autre moi vous il lo gli i una uno mia mio vostra vostro sua suo citta
    centro zona qui li quale altra altre che cui lei noi voi
    person personne persona advance avance anticipo total tout tutto
""".split())
_NOT_PLACE_PHRASES: Final = ("new year", "nouvel an")
_CONNECTORS: Final = frozenset({"de", "du", "to", "of", "a"})


@lru_cache(maxsize=1)
def _calendar_words() -> frozenset[str]:
    """Weekday and month names in the maison's languages (folded): "on Saturday" is not
    a place.
    """
    words: set[str] = set()
    for language in SUPPORTED:
        locale = Locale.parse(LOCALES[language])
        for context in ("format", "stand-alone"):
            words.update(fold(name) for name in locale.days[context]["wide"].values())
            words.update(fold(name) for name in locale.months[context]["wide"].values())
    return frozenset(words)


#: The sentences, by language. ``{city}`` is the city as the language names it.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "address": "Our {city} boutique, {name}, is at {address}{phone}.",
        "no_address": "I do not have the address of our {city} boutique to hand{phone}.",
        "yes": "Yes, we have a boutique in {city}: {name}{address}{phone}.",
        "phone": "; you can reach it on {phone}",
        "hours": "Our {city} boutique is open {week}.",
        "hours_it": "It is open {week}.",
        "holidays_all": "I do not have their hours for public holidays to hand.",
        "holidays": "I do not have its hours for public holidays to hand{phone}.",
        "no_hours": "I do not have the opening hours of our {city} boutique to hand{phone}.",
        "open_now": "It is open at the moment, until {hour}.",
        "closed_now": "It is closed at the moment and opens {when}.",
        "open_now_short": "open now, until {hour}",
        "closed_now_short": "closed now, opens {when}",
        "today": "today at {hour}",
        "tomorrow": "tomorrow at {hour}",
        "later": "on {day} at {hour}",
        "services": "Our {city} boutique offers these appointments: {services}.",
        "services_it": "It offers these appointments: {services}.",
        "no_services": "I have no appointments listed for our {city} boutique.",
        "not_here": "Our {city} boutique does not offer {service}; you will find it {others}.",
        "services_all": "Our boutiques {cities} all offer these appointments: {services}.",
        "services_intro": "Our boutiques offer these appointments:",
        "cities_in": "in",
        "line": "{city}: {detail}.",
        "where": "Our boutiques are {cities}.",
        "elsewhere": "Our boutiques are {cities}; we have none elsewhere.",
        "offer": "Would you like to book a visit?",
        "offer_one_of": "Would you like to book a visit to one of them?",
        "book": "Book a visit",
        "unavailable": ("I am sorry, I cannot reach our boutiques' details just now. Could you "
                        "ask me again in a moment?"),
    },
    "fr": {
        "address": "Notre boutique {de_city}, {name}, vous accueille {address}{phone}.",
        "no_address": ("Je n'ai pas l'adresse de notre boutique {de_city} sous la "
                       "main{phone}."),
        "yes": "Oui, nous avons une boutique à {city} : {name}{address}{phone}.",
        "phone": " ; vous pouvez la joindre au {phone}",
        "hours": "Notre boutique {de_city} est ouverte {week}.",
        "hours_it": "Elle est ouverte {week}.",
        "holidays_all": "Je n'ai pas leurs horaires des jours fériés sous la main.",
        "holidays": "Je n'ai pas ses horaires des jours fériés sous la main{phone}.",
        "no_hours": ("Je n'ai pas les horaires de notre boutique {de_city} sous la "
                     "main{phone}."),
        "open_now": "En ce moment, elle est ouverte jusqu'à {hour}.",
        "closed_now": "Elle est fermée en ce moment et ouvrira {when}.",
        "open_now_short": "ouverte en ce moment, jusqu'à {hour}",
        "closed_now_short": "fermée en ce moment, ouvrira {when}",
        "today": "aujourd'hui à {hour}",
        "tomorrow": "demain à {hour}",
        "later": "le {day} à {hour}",
        "services": ("Notre boutique {de_city} vous propose ces rendez-vous : "
                     "{services}."),
        "services_it": "Elle vous propose ces rendez-vous : {services}.",
        "no_services": "Je n'ai aucun rendez-vous répertorié pour notre boutique {de_city}.",
        "not_here": ("Notre boutique {de_city} ne propose pas ce service ({service}) ; vous le "
                     "trouverez {others}."),
        "services_all": "Nos boutiques {cities} vous proposent toutes ces rendez-vous : {services}.",
        "services_intro": "Nos boutiques vous proposent ces rendez-vous :",
        "cities_in": "à",
        "cities_of": "de",
        "line": "{city} : {detail}.",
        "where": "Nos boutiques se trouvent {cities}.",
        "elsewhere": "Nos boutiques se trouvent {cities} ; nous n'en avons pas ailleurs.",
        "offer": "Souhaitez-vous prendre rendez-vous ?",
        "offer_one_of": "Souhaitez-vous prendre rendez-vous dans l'une d'elles ?",
        "book": "Prendre rendez-vous",
        "unavailable": ("Veuillez m'excuser, je ne parviens pas à consulter les informations "
                        "de nos boutiques pour le moment. Pourriez-vous me reposer la question "
                        "dans un instant ?"),
    },
    "it": {
        "address": ("La nostra boutique di {city}, {name}, si trova all'indirizzo "
                    "{address}{phone}."),
        "no_address": ("Non ho a portata di mano l'indirizzo della nostra boutique di "
                       "{city}{phone}."),
        "yes": "Sì, abbiamo una boutique a {city}: {name}{address}{phone}.",
        "phone": "; il numero di telefono è {phone}",
        "hours": "La nostra boutique di {city} è aperta {week}.",
        "hours_it": "È aperta {week}.",
        "holidays_all": "Non ho a portata di mano i loro orari nei giorni festivi.",
        "holidays": "Non ho a portata di mano i suoi orari nei giorni festivi{phone}.",
        "no_hours": ("Non ho a portata di mano gli orari della nostra boutique di "
                     "{city}{phone}."),
        "open_now": "In questo momento è aperta, fino alle {hour}.",
        "closed_now": "In questo momento è chiusa e riapre {when}.",
        "open_now_short": "aperta ora, fino alle {hour}",
        "closed_now_short": "chiusa ora, riapre {when}",
        "today": "oggi alle {hour}",
        "tomorrow": "domani alle {hour}",
        "later": "{day} alle {hour}",
        "services": "La nostra boutique di {city} propone questi appuntamenti: {services}.",
        "services_it": "Propone questi appuntamenti: {services}.",
        "no_services": "Non ho appuntamenti in elenco per la nostra boutique di {city}.",
        "not_here": ("La nostra boutique di {city} non offre questo servizio ({service}); lo "
                     "trova {others}."),
        "services_all": ("Le nostre boutique {cities} propongono tutte questi appuntamenti: "
                         "{services}."),
        "services_intro": "Le nostre boutique propongono questi appuntamenti:",
        "cities_in": "a",
        "cities_of": "di",
        "line": "{city}: {detail}.",
        "where": "Le nostre boutique si trovano {cities}.",
        "elsewhere": "Le nostre boutique si trovano {cities}; non ne abbiamo altre.",
        "offer": "Desidera prenotare una visita?",
        "offer_one_of": "Desidera prenotare una visita in una di esse?",
        "book": "Prenotare una visita",
        "unavailable": ("Mi scusi, in questo momento non riesco a consultare le informazioni "
                        "sulle nostre boutique. Potrebbe ripetermi la domanda tra qualche "
                        "istante?"),
    },
}

#: How the week is said: day ranges and lists, hours, exceptions, closed days.
_WEEK: Final[dict[str, dict[str, str]]] = {
    "en": {
        "range": "{first} to {last}", "every": "every day", "days": "on {days}",
        "hours": "{days}, {opens} to {closes}", "apart": "{days}, {opens} to {closes}",
        "from": "from {time} {days}", "until": "until {time} {days}",
        "other": "{opens} to {closes} {days}",
        "closed": "closed {days}", "join": "; ",
    },
    "fr": {
        "range": "du {first} au {last}", "every": "tous les jours", "days": "{days}",
        "hours": "{days} de {opens} à {closes}", "apart": "{days} de {opens} à {closes}",
        "from": "à partir de {time} {days}", "until": "jusqu'à {time} {days}",
        "other": "de {opens} à {closes} {days}",
        "closed": "fermée {days}", "join": " ; ",
    },
    "it": {
        "range": "{first} {last}", "every": "tutti i giorni", "days": "{days}",
        "hours": "{days}, dalle {opens} alle {closes}",
        "apart": "{days} dalle {opens} alle {closes}",
        "from": "{days} dalle {time}", "until": "{days} fino alle {time}",
        "other": "{days} dalle {opens} alle {closes}",
        "closed": "chiusa {days}", "join": "; ",
    },
}
_IT_SUNDAY: Final = 6
"""The one Italian weekday that is feminine ("la domenica", "dalla domenica")."""


@dataclass(frozen=True, slots=True)
class Question:
    """What the client asks (:func:`read_question`)."""

    topics: frozenset[str]
    """Among ``address``, ``hours``, ``services``; empty when the words do not tell."""
    presence: bool
    """"Do you have a boutique in …?", "avete una boutique a …?"."""
    boutique_ids: tuple[str, ...]
    """The maison's boutiques she names, in the book's order."""
    elsewhere: bool
    """She names a place where the maison has no boutique (and none where it has one)."""
    holiday: bool = False
    """She asks about a public holiday (Christmas, Easter…), for which the book has no
    hours."""
    every: bool = False
    """She asks about the boutiques in general ("which cities", "your boutiques"), not
    about her own."""
    service: str | None = None
    """The service she names ("repairs", "un essayage"), as the book's id."""


def _has(plain: str, phrases: Iterable[str]) -> bool:
    return any(f" {phrase} " in plain for phrase in phrases)


def _names(shop: Boutique) -> set[str]:
    """What a client may call ``shop``: its id, its city as the book and each language
    write it.
    """
    names = {fold(shop.id), fold(shop.city)}
    names.update(fold(say_city(shop.city, language)) for language in SUPPORTED)
    return {name for name in names if name}


def _place_candidates(text: str, language: str, lower_case: bool) -> list[str]:
    """Words after "in", "à", "a"… that may name a place: capitalised ones ("in New
    York", "à Genève"), or with ``lower_case`` (she asks whether there is a boutique
    there) the word itself ("a roma").
    """
    before = _PLACE_BEFORE | ({"a"} if supported(language) in _PLACE_BEFORE_A else set())
    tokens = re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text)
    found: list[str] = []
    for i, token in enumerate(tokens[:-1]):
        if token.casefold() not in before:
            continue
        following = tokens[i + 1:i + 5]
        if len(following) > 1 and following[0].casefold() in _CONNECTORS:
            following = following[1:]  # "près de Genève", "vicino a Roma"
        following = following[:3]
        capitalised: list[str] = []
        for word in following:
            if not word[:1].isupper() or fold(word) in _NOT_PLACES:
                break
            capitalised.append(word)
        if capitalised:
            found.append(" ".join(capitalised))
        elif lower_case and len(following[0]) > 2:
            found.append(following[0])
    return [c for c in found if fold(c) not in _NOT_PLACES and fold(c) not in _calendar_words()
            and not fold(c).startswith(_NOT_PLACE_PHRASES)]


def read_question(text: str | None, boutiques: Mapping[str, Boutique],
                  language: str = "en") -> Question:
    """What ``text`` asks about the boutiques (see :class:`Question`)."""
    raw = text or ""
    # "close to me" asks where, not until when.
    plain = f" {fold(raw)} ".replace(" close to ", " near ")
    topics = {topic for topic, words in _TOPIC_WORDS.items() if _has(plain, words)}
    if _WHERE_FR.search(raw):
        topics.add("address")
    presence = _has(plain, _HAVE_WORDS) and _has(plain, _SHOP_WORDS)
    service = find_service(raw) or next(
        (sid for word, sid in _MORE_SERVICE_WORDS.items() if f" {word} " in plain), None)
    if not topics and service is not None:
        topics.add("services")  # "do you do repairs in store?", "un essayage en boutique ?"
    named = tuple(shop_id for shop_id, shop in boutiques.items()
                  if _has(plain, _names(shop)))
    if not named:
        # A street or quarter as the booking form knows them: "the Mount Street store".
        street = find_boutique(raw, boutiques)
        named = (street,) if street is not None else ()
    elsewhere = False
    if not named:
        for candidate in _place_candidates(raw, language, lower_case=presence):
            folded = fold(candidate)
            # A street or quarter of one boutique ("in Mayfair") names it; a word of
            # every boutique's name ("Maison Solenne") names none.
            holders = [shop_id for shop_id, shop in boutiques.items()
                       if f" {folded} " in f" {fold(shop.name)} {fold(shop.address or '')} "]
            if len(holders) == 1:
                named = (holders[0],)
                break
            if not holders:
                elsewhere = True
        if named:
            elsewhere = False
    return Question(frozenset(topics), presence, named, elsewhere,
                    holiday=_has(plain, _HOLIDAY_WORDS), every=_has(plain, _ALL_WORDS),
                    service=service if "services" in topics else None)


def _in_city(city: str, language: str) -> str:
    """"de Paris", "d'Amsterdam" in French; the city as it is elsewhere."""
    if supported(language) != "fr":
        return city
    return f"d'{city}" if fold(city)[:1] in "aeiouy" else f"de {city}"


def _city_words(shop: Boutique, language: str) -> dict[str, str]:
    city = say_city(shop.city, language)
    return {"city": city, "de_city": _in_city(city, language)}


def say_phone(number: str) -> str:
    """"+33 1 42 65 00 00": the number as the book has it, spaced as its country writes it."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _phone(shop: Boutique, words: Mapping[str, str]) -> str:
    return words["phone"].format(phone=say_phone(shop.phone)) if shop.phone else ""


def _clock(moment: time, language: str) -> str:
    """A wall-clock time of the book as the language says it ("10:30", "10 h 30")."""
    return say_time(datetime.combine(date(2001, 1, 1), moment, tzinfo=timezone.utc), language)


@lru_cache(maxsize=4)
def _day_names(language: str) -> dict[int, str]:
    return dict(Locale.parse(LOCALES[supported(language)]).days["format"]["wide"].items())


def _recurring(days: Sequence[int], language: str) -> str:
    """The days as recurring: "on Mondays and Thursdays", "le lundi et le jeudi", "il
    lunedì e la domenica".
    """
    lang = supported(language)
    names = _day_names(lang)
    if lang == "en":
        said = [f"{names[d]}s" for d in days]
    elif lang == "fr":
        said = [f"le {names[d]}" for d in days]
    else:
        said = [f"{'la' if d == _IT_SUNDAY else 'il'} {names[d]}" for d in days]
    return pick(_WEEK, lang)["days"].format(days=say_list(said, lang))


def _span(days: Sequence[int], language: str) -> str:
    """Consecutive days: "every day", "Monday to Saturday" / "du lundi au samedi" /
    "dal lunedì al sabato"; two or one day as recurring.
    """
    lang = supported(language)
    week = pick(_WEEK, lang)
    if len(days) == 7:
        return week["every"]
    if len(days) < 3:
        return _recurring(days, lang)
    names = _day_names(lang)
    first, last = names[days[0]], names[days[-1]]
    if lang == "it":
        first = f"{'dalla' if days[0] == _IT_SUNDAY else 'dal'} {first}"
        last = f"{'alla' if days[-1] == _IT_SUNDAY else 'al'} {last}"
    return week["range"].format(first=first, last=last)


def _runs(days: Iterable[int]) -> list[list[int]]:
    """``days`` cut into runs of consecutive weekdays (Monday first)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def say_week(shop: Boutique, language: str) -> str | None:
    """The boutique's week at a glance, None when the book has no hours for it: the
    usual hours over their days with the exceptions in brackets, other days with theirs,
    then the closed days. "Monday to Saturday, 10:00 to 19:00 (from 10:30 on Mondays,
    until 20:00 on Thursdays); closed on Sundays" / "du lundi au samedi de 10 h à 19 h (à
    partir de 10 h 30 le lundi, jusqu'à 20 h le jeudi) ; fermée le dimanche" / "dal lunedì
    al sabato, dalle 10:00 alle 19:00 (il lunedì dalle 10:30, il giovedì fino alle 20:00);
    chiusa la domenica".
    """
    hours = dict(shop.hours)
    if not hours:
        return None
    lang = supported(language)
    week = pick(_WEEK, lang)
    counts = Counter(hours.values())
    usual = max(counts, key=lambda pair: (counts[pair], -min(d for d in hours if hours[d] == pair)))

    def differs_at_both_ends(day: int) -> bool:
        return hours[day][0] != usual[0] and hours[day][1] != usual[1]

    parts: list[str] = []
    apart: list[int] = []
    for run in _runs(hours):
        if usual not in {hours[d] for d in run}:
            apart.extend(run)
            continue
        while differs_at_both_ends(run[0]):
            apart.append(run.pop(0))
        while differs_at_both_ends(run[-1]):
            apart.append(run.pop())
        exceptions: dict[tuple[str, time, time], list[int]] = {}
        for day in run:
            opens, closes = hours[day]
            if (opens, closes) == usual:
                continue
            kind = "from" if closes == usual[1] else "until" if opens == usual[0] else "other"
            exceptions.setdefault((kind, opens, closes), []).append(day)
        said = week["hours"].format(days=_span(run, lang), opens=_clock(usual[0], lang),
                                    closes=_clock(usual[1], lang))
        if exceptions:
            notes = [week[kind].format(time=_clock(closes if kind == "until" else opens, lang),
                                       opens=_clock(opens, lang), closes=_clock(closes, lang),
                                       days=_recurring(days, lang))
                     for (kind, opens, closes), days in exceptions.items()]
            said += f" ({', '.join(notes)})"
        parts.append(said)
    others: dict[tuple[time, time], list[int]] = {}
    for day in sorted(apart):
        others.setdefault(hours[day], []).append(day)
    for (opens, closes), days in others.items():
        span = _span(days, lang) if len(_runs(days)) == 1 else _recurring(days, lang)
        parts.append(week["apart"].format(days=span, opens=_clock(opens, lang),
                                          closes=_clock(closes, lang)))
    closed = [d for d in range(7) if d not in hours]
    if closed:
        parts.append(week["closed"].format(days=_recurring(closed, lang)))
    return week["join"].join(parts)


def _status(shop: Boutique, now: datetime, language: str, *, short: bool) -> str | None:
    """Open at ``now`` and until when, or when it next opens (in the boutique's zone);
    None when the book gives no hours.
    """
    words = pick(_WORDS, language)
    suffix = "_short" if short else ""
    local_now = require_aware(now, "now").astimezone(shop.zone)
    if shop.is_open_at(now):
        closes = datetime.combine(local_now.date(), shop.hours[local_now.weekday()][1],
                                  tzinfo=shop.zone)
        return words[f"open_now{suffix}"].format(hour=say_time(closes, language))
    following = shop.next_opening(now)
    if following is None:
        return None
    local = following.astimezone(shop.zone)
    hour = say_time(local, language)
    if local.date() == local_now.date():
        when = words["today"].format(hour=hour)
    elif local.date() == local_now.date() + timedelta(days=1):
        when = words["tomorrow"].format(hour=hour)
    else:
        when = words["later"].format(day=say_day(local, language), hour=hour)
    return words[f"closed_now{suffix}"].format(when=when)


def _label_list(service_ids: Sequence[str], labels: Mapping[str, str], language: str) -> str:
    """The services, labelled in her language, as a sentence lists them."""
    return say_list([labels.get(s, s).lower() for s in service_ids], language)


def _book_button(language: str, boutique_id: str | None) -> dict[str, str]:
    payload = f"/{BOOK_INTENT}"
    if boutique_id is not None:
        payload += json.dumps({"boutique": boutique_id})
    return {"title": pick(_WORDS, language)["book"], "payload": payload}


def _finish(sentences: list[str], language: str, boutique_id: str | None, bookable: bool,
            offer: str = "offer", sep: str = " ") -> Reply:
    """The reply: its sentences, the question that leads to the button when there is
    room for it, and the button when the boutique takes appointments.
    """
    buttons = [_book_button(language, boutique_id)] if bookable else []
    if bookable and len(sentences) < MAX_SENTENCES:
        sentences = [*sentences, pick(_WORDS, language)[offer]]
    return Reply(sep.join(sentences), buttons)


def _one(shop: Boutique, question: Question, language: str, labels: Mapping[str, str],
         now: datetime, others: Sequence[Boutique]) -> Reply:
    words = pick(_WORDS, language)
    city = _city_words(shop, language)
    topics = question.topics
    overview = not topics and not question.presence
    sentences: list[str] = []
    if question.presence:
        address = f", {shop.address}" if shop.address else ""
        phone = _phone(shop, words) if "address" in topics else ""
        sentences.append(words["yes"].format(name=shop.name, address=address, phone=phone,
                                             **city))
    elif "address" in topics or overview:
        phone = _phone(shop, words) if "address" in topics or not shop.address else ""
        key = "address" if shop.address else "no_address"
        sentences.append(words[key].format(name=shop.name, address=shop.address, phone=phone,
                                           **city))
    week = say_week(shop, language)
    if "hours" in topics or overview:
        if week is None:
            sentences.append(words["no_hours"].format(phone=_phone(shop, words), **city))
        else:
            key = "hours_it" if sentences else "hours"
            sentences.append(words[key].format(week=week, **city))
    if "services" in topics:
        asked = question.service
        elsewhere = [o for o in others if asked and asked in o.services]
        if asked and asked not in shop.services and elsewhere:
            sentences.append(words["not_here"].format(
                service=labels.get(asked, asked).lower(),
                others=_cities(elsewhere, language), **city))
        if shop.services:
            sentences.append(words["services_it" if sentences else "services"].format(
                services=_label_list(shop.services, labels, language), **city))
        else:
            sentences.append(words["no_services"].format(**city))
    status = _status(shop, now, language, short=False) if week is not None else None
    if question.holiday and week is not None:
        status = words["holidays"].format(phone=_phone(shop, words))
    if status and ("hours" in topics or question.presence or overview) \
            and len(sentences) < MAX_SENTENCES:
        sentences.append(status)
    return _finish(sentences[:MAX_SENTENCES], language, shop.id, bool(shop.services))


def _cities(shops: Sequence[Boutique], language: str, preposition_key: str = "cities_in") -> str:
    words = pick(_WORDS, language)
    return say_list([say_city(s.city, language) for s in shops], language,
                    words.get(preposition_key, words["cities_in"]))


def _several(shops: Sequence[Boutique], question: Question, language: str,
             labels: Mapping[str, str], now: datetime) -> Reply:
    words = pick(_WORDS, language)
    bookable = any(s.services for s in shops)
    if len(shops) > MAX_LINES:
        return _finish([words["where"].format(cities=_cities(shops, language))], language, None,
                       bookable, "offer_one_of")
    topics = question.topics
    if topics == {"services"}:
        groups: dict[tuple[str, ...], list[Boutique]] = {}
        for shop in shops:
            groups.setdefault(shop.services, []).append(shop)
        if len(groups) == 1:
            offered = next(iter(groups))
            text = words["services_all"].format(cities=_cities(shops, language, "cities_of"),
                                                services=_label_list(offered, labels, language))
            return _finish([text], language, None, bookable, "offer_one_of")
        lines = [words["services_intro"]] + [
            words["line"].format(city=say_list([say_city(s.city, language) for s in group],
                                               language),
                                 detail=_label_list(offered, labels, language))
            for offered, group in groups.items() if offered]
        return _finish(lines, language, None, bookable, "offer_one_of", sep="\n")
    lines = []
    for shop in shops:
        details: list[str] = []
        if "address" in topics or question.presence or not topics:
            details.append(", ".join(part for part in (
                shop.name, shop.address,
                say_phone(shop.phone) if shop.phone and "address" in topics else None) if part))
        if "hours" in topics:
            details.append(say_week(shop, language) or "")
        elif not topics or question.presence:
            status = _status(shop, now, language, short=True)
            if status and details:
                details[-1] += f" ({status})"
        detail = pick(_WEEK, language)["join"].join(d for d in details if d)
        if detail:
            lines.append(words["line"].format(city=say_city(shop.city, language), detail=detail))
    if question.holiday:
        lines.append(words["holidays_all"])
    return _finish(lines, language, None, bookable, "offer_one_of", sep="\n")


def boutique_answer(text: str | None, language: str, boutiques: Mapping[str, Boutique],
                    labels: Mapping[str, str], home_boutique_id: str | None,
                    now: datetime) -> Reply:
    """The reply to ``text``, a question about the boutiques, in ``language``: from the
    boutiques of the book, the service labels in her language (``labels``: service id →
    label), her home boutique (None for a stranger) and ``now`` (aware).
    """
    require_aware(now, "now")
    language = supported(language)
    words = pick(_WORDS, language)
    shops = list(boutiques.values())
    if not shops:
        return unavailable(language)
    question = read_question(text, boutiques, language)
    if question.elsewhere:
        return _finish([words["elsewhere"].format(cities=_cities(shops, language))], language,
                       None, any(s.services for s in shops), "offer_one_of")
    named = [boutiques[i] for i in question.boutique_ids]
    if not named and not question.every and home_boutique_id in boutiques:
        named = [boutiques[str(home_boutique_id)]]
    if not named and len(shops) == 1:
        named = shops
    if len(named) == 1:
        return _one(named[0], question, language, labels, now, shops)
    return _several(named or shops, question, language, labels, now)


def unavailable(language: str) -> Reply:
    """What she hears when the book cannot be read: an apology and an invitation to ask
    again in a moment (nothing is promised that does not happen).
    """
    return Reply(pick(_WORDS, language)["unavailable"])
