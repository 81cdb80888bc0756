"""Replying to the maison's private events, without Rasa: which event a client means,
how many guests they bring ("just me", "with my husband", "2 guests", "nous serons
trois"), and the sentences that offer, ask, confirm and withdraw, in English and French.

Every event, date, place and count said comes from :mod:`salon.integrations.events`;
French names an event by its title in guillemets (no article to guess).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import address, say_day, say_day_short, say_time
from salon.integrations.catalog import fold
from salon.integrations.crm import ClientRecord
from salon.integrations.events import Event, Rsvp, Standing

__all__ = [
    "OFFER_ATTEND",
    "OFFER_WAITLIST",
    "already_declined",
    "ask_guests",
    "choose_event",
    "closed_line",
    "confirm_question",
    "declined_offer_line",
    "describe",
    "event_begun",
    "find_event",
    "full_lead",
    "guests_allowed",
    "guests_not_understood",
    "no_event_line",
    "not_sure_which",
    "nothing_to_withdraw",
    "parse_guests",
    "replied_line",
    "taken_meanwhile",
    "which_to_withdraw",
    "withdraw_question",
    "withdrawn_line",
]

OFFER_ATTEND = "attend"
OFFER_WAITLIST = "waitlist"

_NUMBERS = {
    "zero": 0, "no": 0, "none": 0, "aucun": 0, "aucune": 0, "one": 1, "a": 1, "an": 1, "un": 1,
    "une": 1, "single": 1, "two": 2, "deux": 2, "couple": 2, "three": 3, "trois": 3, "four": 4,
    "quatre": 4, "five": 5, "cinq": 5, "six": 6,
}
_NUMBER = r"(\d{1,2}|zero|no|none|aucune?|one|an?|une?|single|two|deux|three|trois|four|quatre|five|cinq|six)"
_COMPANION = (r"(husband|wife|partner|spouse|fiance|fiancee|daughter|son|mother|mum|mom|father|dad|"
              r"sister|brother|friend|guest|plus one|colleague|girlfriend|boyfriend|mari|femme|epoux|"
              r"epouse|compagnon|compagne|fille|fils|mere|pere|soeur|frere|ami|amie|invite|invitee|"
              r"collegue)")
_ALONE = re.compile(
    r"\b(just me|only me|me only|myself|alone|on my own|by myself|solo|no guests?|without (a )?guests?|"
    r"nobody|no one|no plus one|juste moi|moi seule?|seule?|sans invitee?s?)\b")
_GUESTS = re.compile(rf"\b{_NUMBER} (extra |additional |more )?(guests?|invitee?s?|accompagnant(e|s|es)?|"
                     r"friends?|amie?s?|people with me|personnes? avec moi)\b")
_PLUS = re.compile(r"(?:^|\s)\+\s?(\d{1,2})\b|\bplus (one|two|1|2)\b")
_PARTY = re.compile(
    rf"\b(?:{_NUMBER} of us|we(?: ll| will)? be {_NUMBER}|there will be {_NUMBER}|party of {_NUMBER}|"
    rf"for {_NUMBER}(?: people| persons| places| seats)?\b|{_NUMBER} (?:people|persons|places|seats|personnes)|"
    rf"nous (?:serons|viendrons)(?: a)? {_NUMBER}|a {_NUMBER}\b|pour {_NUMBER})")
_TOGETHER = re.compile(rf"\b(both of us|the two of us|nous deux|a deux|me and my {_COMPANION}|"
                       rf"my {_COMPANION} and (i|me)|with (my|a|an|one) {_COMPANION}|avec (mon|ma|un|une) "
                       rf"{_COMPANION}|mon {_COMPANION} et moi|ma {_COMPANION} et moi|et mon {_COMPANION}|"
                       rf"et ma {_COMPANION}|bring(ing)? (my|a|one) {_COMPANION}|my {_COMPANION} (will|would|is|can) )")
_BARE = re.compile(r"^(\d{1,2}|zero|none|aucune?|one|une?|two|deux|three|trois|four|quatre|five|cinq|six|no)$")


def _count(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBERS.get(word)


def parse_guests(text: str | None, *, bare: bool = True) -> int | None:
    """How many guests come with the client: "just me" 0, "with my husband" 1, "2 guests"
    2, "+1" 1, "we'll be three" 2, "nous serons deux" 1. A bare number (or "no") counts
    guests when ``bare``: it answers "will anyone be joining you?". None when the words
    say nothing about it.
    """
    if text is None:
        return None
    raw = str(text).strip()
    if raw.startswith("/"):
        return None  # a button payload: its entity carries the value
    plus = _PLUS.search(raw.casefold())
    if plus:
        return _count(plus.group(1) or plus.group(2))
    plain = fold(raw)
    if not plain:
        return None
    if _BARE.match(plain):
        return (0 if plain == "no" else _count(plain)) if bare else None
    found = _GUESTS.search(plain)
    if found:
        return _count(found.group(1))
    party = _PARTY.search(plain)
    if party:
        size = next((_count(g) for g in party.groups() if g), None)
        return None if size is None else max(0, size - 1)
    if _ALONE.search(plain):
        return 0
    if _TOGETHER.search(plain):
        return 1
    return None


# --------------------------------------------------------------------------- which event

_STOP = frozenset("the a an of de la le les du des d l to for at in au with my".split())
_ALIASES = {
    "jewellery": "joaillerie", "jewelry": "joaillerie", "bijoux": "joaillerie", "joaillerie": "joaillerie",
    "autumn": "automne", "fall": "automne", "automne": "automne", "preview": "avant premiere",
    "avant": "avant premiere", "premiere": "avant premiere", "trunk": "trunk", "show": "trunk",
    "londres": "london", "londra": "london", "mayfair": "london", "mount": "london", "faubourg": "paris",
    "honore": "paris", "milano": "milan", "spiga": "milan", "montenapoleone": "milan",
}


def _words(text: str) -> set[str]:
    return {_ALIASES.get(w, w) for w in fold(text).split() if w not in _STOP}


def _keys(event: Event) -> set[str]:
    keys: set[str] = {fold(event.venue.city), event.venue.boutique_id}
    for title in event.title.values():
        keys |= _words(title)
    return keys


def find_event(text: str | None, standings: Sequence[Standing]) -> Standing | None:
    """The event ``text`` names: its id (a button), else the one whose title and city
    share the most words with it, when that is a single one.
    """
    if not text:
        return None
    raw = str(text)
    for standing in standings:
        if standing.event.id in raw:
            return standing
    said = _words(raw)
    scored = sorted(((len(said & _keys(s.event)), s) for s in standings), key=lambda x: -x[0])
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


# --------------------------------------------------------------------------- sentences

_FR_CITIES = {"London": "Londres"}
_EN_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_FR_NUMBERS = {1: "un", 2: "deux", 3: "trois", 4: "quatre", 5: "cinq"}


def _fr(language: str) -> bool:
    return language == "fr"


def _city(event: Event, language: str) -> str:
    return _FR_CITIES.get(event.venue.city, event.venue.city) if _fr(language) else event.venue.city


def _title(event: Event, language: str) -> str:
    return f"« {event.title_in('fr')} »" if _fr(language) else f"the {event.title_in('en')}"


def describe(event: Event, language: str) -> str:
    """"the Autumn collection preview on Thursday 10 December at 18:30 in Paris" /
    "« Avant-première de la collection d'automne », jeudi 10 décembre à 18h30 à Paris".
    """
    local = event.starts_at.astimezone(event.venue.zone)
    if _fr(language):
        return (f"{_title(event, language)}, {say_day(local, language)} à {say_time(local, language)} "
                f"à {_city(event, language)}")
    return (f"{_title(event, language)} on {say_day(local, language)} at {say_time(local, language)} "
            f"in {_city(event, language)}")


def _number(n: int, language: str) -> str:
    return (_FR_NUMBERS if _fr(language) else _EN_NUMBERS).get(n, str(n))


def _guest_count(n: int, language: str) -> str:
    """"one guest" / "un invité"."""
    if _fr(language):
        return f"{_number(n, language)} invité{'s' if n > 1 else ''}"
    return f"{_number(n, language)} guest{'s' if n > 1 else ''}"


def _for(guests: int, language: str) -> str:
    """"you and one guest" / "vous et un invité" (just "you" / "vous" alone)."""
    if _fr(language):
        return "vous" if guests == 0 else f"vous et {_guest_count(guests, language)}"
    return "you" if guests == 0 else f"you and {_guest_count(guests, language)}"


def _yours(guests: int, language: str) -> str:
    """"your guest" / "your two guests"; "votre invité" / "vos deux invités"."""
    if _fr(language):
        return "votre invité" if guests == 1 else f"vos {_number(guests, language)} invités"
    return "your guest" if guests == 1 else f"your {_number(guests, language)} guests"


def _with(guests: int, language: str) -> str:
    if _fr(language):
        return "sans invité" if guests == 0 else f"avec {_guest_count(guests, language)}"
    return "on your own" if guests == 0 else f"with {_guest_count(guests, language)}"


def _button(standing: Standing, intent: str, language: str) -> dict[str, str]:
    """"London, 21 Jan" / "Londres, 21 janv." (≤ 20 characters)."""
    local = standing.event.starts_at.astimezone(standing.event.venue.zone)
    day = say_day_short(local, language).split(" ", 1)[1]
    title = f"{_city(standing.event, language)}, {day}"[:20]
    return {"title": title, "payload": f'/{intent}{{"rsvp_event": "{standing.event.id}"}}'}


def _status_note(standing: Standing, language: str) -> str:
    reply = standing.reply
    if reply is None:
        return ""
    if reply.status == "accepted":
        return (f" (votre venue est confirmée, {_with(reply.guests, language)})" if _fr(language)
                else f" (you are expected {_with(reply.guests, language)})")
    if reply.status == "waitlisted":
        return " (vous êtes sur liste d'attente)" if _fr(language) else " (you are on the waiting list)"
    return ""


def choose_event(standings: Sequence[Standing], language: str) -> Reply:
    """Which event: each named with its day and city, one button (or list row) each."""
    items = [f"{describe(s.event, language)}{_status_note(s, language)}" for s in standings]
    if _fr(language):
        text = (f"Avec plaisir. Vos invitations : {' ; '.join(items)}. "
                "À laquelle souhaitez-vous répondre ?")
    else:
        listed = " and ".join(items) if len(items) <= 2 else "; ".join(items[:-1]) + "; and " + items[-1]
        text = f"With pleasure. You are invited to {listed}. Which would you like to reply to?"
    return Reply(text, [_button(s, "inform", language) for s in standings[:10]])


def ask_guests(standing: Standing, language: str) -> Reply:
    """Ask whether anyone joins the client: a "just me" button and one per guest count
    the invitation allows (two at most); a place already confirmed is recalled first.
    """
    event = standing.event
    allowed = event.guests_per_invitation
    reply = standing.reply
    buttons = [{"title": "Je viendrai seul(e)" if _fr(language) else "Just me",
                "payload": '/inform{"rsvp_guests": "0"}'}]
    for n in range(1, min(allowed, 2) + 1):
        title = (f"Avec {_guest_count(n, language)}" if _fr(language)
                 else f"With {'a guest' if n == 1 else _guest_count(n, language)}")
        buttons.append({"title": title, "payload": f'/inform{{"rsvp_guests": "{n}"}}'})
    expected = standing.attending and reply is not None
    if _fr(language):
        now = (f"Votre venue à {_title(event, language)} est confirmée, {_with(reply.guests, language)}. "
               if expected and reply is not None else "")
        text = (f"{now}Serez-vous accompagné(e){'' if now else ' pour ' + _title(event, language)} ? "
                f"Votre invitation est pour vous et {_guest_count(allowed, language)}.")
    else:
        now = (f"You are expected at {_title(event, language)} {_with(reply.guests, language)}. "
               if expected and reply is not None else "")
        text = (f"{now}Will anyone be joining you{'' if now else ' at ' + _title(event, language)}? "
                f"Your invitation is for you and {_guest_count(allowed, language)}.")
    return Reply(text, buttons)


def _places_left(left: int, event: Event, language: str) -> str:
    if _fr(language):
        if left == 0:
            return f"{_title(event, language)} est complet"
        if left == 1:
            return f"il ne reste qu'une place pour {_title(event, language)}"
        return f"il ne reste que {_number(left, language)} places pour {_title(event, language)}"
    if left == 0:
        return f"{_title(event, language)} is full"
    return (f"only {_number(left, language)} place{'s remain' if left > 1 else ' remains'} at "
            f"{_title(event, language)}")


def confirm_question(standing: Standing, guests: int, language: str,
                     advisor_first_name: str | None) -> tuple[Reply, str]:
    """The summary to confirm, or, when the client and their guests no longer fit, the
    waiting list offered with the advisor; and which of the two was offered.
    """
    event = standing.event
    local = event.starts_at.astimezone(event.venue.zone)
    day, hour = say_day(local, language), say_time(local, language)
    person = advisor_first_name
    if not standing.has_room_for(guests):
        why = _places_left(standing.remaining, event, language)
        if _fr(language):
            party = "" if guests == 0 else f", avec {_yours(guests, language)}"
            text = (f"Je suis désolé, {why}. Souhaitez-vous que je vous inscrive sur la liste "
                    f"d'attente{party} ?")
            buttons = [{"title": "Liste d'attente", "payload": "/affirm"},
                       {"title": f"Parler à {person}"[:20] if person else "Un conseiller",
                        "payload": "/talk_to_advisor"},
                       {"title": "Non merci", "payload": "/deny"}]
        else:
            who = "you" if guests == 0 else f"you and {_yours(guests, language)}"
            text = f"I am sorry, {why}. Shall I put {who} on the waiting list?"
            buttons = [{"title": "Join the waitlist", "payload": "/affirm"},
                       {"title": f"Speak to {person}"[:20] if person else "Speak to an advisor",
                        "payload": "/talk_to_advisor"},
                       {"title": "No, thank you", "payload": "/deny"}]
        return Reply(text, buttons), OFFER_WAITLIST
    change = event.guests_per_invitation > 0
    if _fr(language):
        text = (f"Je confirme donc {_title(event, language)}, {day} à {hour}, {event.venue.name}, "
                f"pour {_for(guests, language)} ?")
        buttons = [{"title": "Oui, je confirme", "payload": "/affirm"},
                   {"title": "Changer les invités" if change else "Non merci", "payload": "/deny"}]
    else:
        text = (f"So that is {_title(event, language)}, {day} at {hour}, {event.venue.name}, "
                f"for {_for(guests, language)}. Shall I confirm?")
        buttons = [{"title": "Yes, please confirm", "payload": "/affirm"},
                   {"title": "Change guests" if change else "No, thank you", "payload": "/deny"}]
    return Reply(text, buttons), OFFER_ATTEND


def _dress(event: Event, language: str) -> str:
    code = event.dress_code_in(language)
    if not code:
        return ""
    code = code[0].lower() + code[1:]
    return f" Code vestimentaire : {code}." if _fr(language) else f" Dress code: {code}."


def replied_line(rsvp: Rsvp, event: Event, record: ClientRecord, language: str, *,
                 changed: bool = False) -> str:
    """The one line that confirms what was recorded: the place (or the waiting list),
    who comes, when and where.
    """
    local = event.starts_at.astimezone(event.venue.zone)
    day, hour = say_day(local, language), say_time(local, language)
    name = address(record, language)
    advisor = record.advisor.first_name if record.advisor else None
    if rsvp.status == "waitlisted":
        if _fr(language):
            party = "" if rsvp.guests == 0 else f", avec {_yours(rsvp.guests, language)}"
            return (f"C'est noté, {name} : vous êtes sur la liste d'attente de {_title(event, language)}, "
                    f"{day}{party}.")
        who = "you are" if rsvp.guests == 0 else f"you and {_yours(rsvp.guests, language)} are"
        return f"It is noted, {name}: {who} on the waiting list for {_title(event, language)} on {day}."
    if _fr(language):
        head = "Votre réponse est modifiée" if changed else "C'est confirmé"
        host = f" {advisor} se réjouit de vous y accueillir." if advisor else ""
        return (f"{head}, {name} : {_title(event, language)}, {day} à {hour}, {event.venue.name}, "
                f"pour {_for(rsvp.guests, language)}.{_dress(event, language)}{host}")
    head = "Your reply is updated" if changed else "It is confirmed"
    host = f" {advisor} looks forward to welcoming you." if advisor else ""
    return (f"{head}, {name}: {_title(event, language)}, {day} at {hour}, {event.venue.name}, "
            f"for {_for(rsvp.guests, language)}.{_dress(event, language)}{host}")


def _advisor_button(record: ClientRecord | None, language: str) -> dict[str, str]:
    advisor = record.advisor.first_name if record is not None and record.advisor else None
    if _fr(language):
        title = f"Parler à {advisor}" if advisor else "Un conseiller"
    else:
        title = f"Speak to {advisor}" if advisor else "Speak to an advisor"
    return {"title": title[:20], "payload": "/talk_to_advisor"}


def no_event_line(record: ClientRecord, language: str) -> Reply:
    """No event awaits the client's reply: her advisor will tell her of the coming ones."""
    who = record.advisor.first_name if record.advisor else None
    if _fr(language):
        lead = f"{who} se fera un plaisir" if who else "Votre conseiller se fera un plaisir"
        return Reply(f"Aucun événement n'attend de réponse pour le moment. {lead} de vous parler des "
                     "prochaines soirées de la maison.", [_advisor_button(record, language)])
    lead = f"{who} will gladly" if who else "Your client advisor will gladly"
    return Reply(f"There is no event awaiting a reply at the moment. {lead} tell you about the maison's "
                 "coming evenings.", [_advisor_button(record, language)])


def closed_line(event: Event, record: ClientRecord, language: str) -> Reply:
    """Replies are closed (the ``rsvp_by`` day has passed): the advisor sees what is possible."""
    who = record.advisor.first_name if record.advisor else None
    last = event.rsvp_by or event.starts_at.astimezone(event.venue.zone).date()
    day = say_day(datetime.combine(last, time(12), tzinfo=event.venue.zone), language)
    if _fr(language):
        lead = f"{who} verra" if who else "Votre conseiller verra"
        return Reply(f"Les réponses pour {_title(event, language)} étaient attendues jusqu'au {day}. "
                     f"{lead} volontiers ce qui reste possible.", [_advisor_button(record, language)])
    lead = f"{who} will gladly see" if who else "Your client advisor will gladly see"
    return Reply(f"Replies for {_title(event, language)} closed on {day}. {lead} what is still possible.",
                 [_advisor_button(record, language)])


def withdraw_question(standing: Standing, language: str) -> Reply:
    """Asked once before a reply is withdrawn: a place, a waiting list, or regrets."""
    event = standing.event
    local = event.starts_at.astimezone(event.venue.zone)
    day = say_day(local, language)
    status = standing.reply.status if standing.reply else None
    if _fr(language):
        if status == "accepted":
            return Reply(f"Souhaitez-vous que j'annule votre venue à {_title(event, language)}, {day} ?",
                         [{"title": "Oui, l'annuler", "payload": "/affirm"},
                          {"title": "Garder ma place", "payload": "/deny"}])
        if status == "waitlisted":
            return Reply(f"Souhaitez-vous que je vous retire de la liste d'attente de {_title(event, language)} ?",
                         [{"title": "Oui, merci", "payload": "/affirm"},
                          {"title": "Y rester", "payload": "/deny"}])
        return Reply(f"Souhaitez-vous que je transmette vos regrets pour {_title(event, language)}, {day} ?",
                     [{"title": "Oui, merci", "payload": "/affirm"},
                      {"title": "Pas encore", "payload": "/deny"}])
    if status == "accepted":
        return Reply(f"Shall I cancel your place at {_title(event, language)} on {day}?",
                     [{"title": "Yes, cancel it", "payload": "/affirm"},
                      {"title": "Keep my place", "payload": "/deny"}])
    if status == "waitlisted":
        return Reply(f"Shall I take you off the waiting list for {_title(event, language)}?",
                     [{"title": "Yes, please", "payload": "/affirm"},
                      {"title": "Stay on it", "payload": "/deny"}])
    return Reply(f"Shall I send your regrets for {_title(event, language)} on {day}?",
                 [{"title": "Yes, please", "payload": "/affirm"},
                  {"title": "Not yet", "payload": "/deny"}])


def withdrawn_line(event: Event, previous: str | None, record: ClientRecord, language: str) -> str:
    """The line confirming a withdrawal: the place released, off the waiting list, or the
    regrets sent (``previous``: the reply withdrawn).
    """
    who = record.advisor.first_name if record.advisor else None
    if _fr(language):
        if previous == "accepted":
            door = f" {who} reste à votre disposition si vos projets changent." if who else ""
            return f"C'est fait : votre place à {_title(event, language)} est libérée.{door}"
        if previous == "waitlisted":
            return f"C'est fait : vous n'êtes plus sur la liste d'attente de {_title(event, language)}."
        return f"C'est noté : j'ai transmis vos regrets pour {_title(event, language)}."
    if previous == "accepted":
        door = f" {who} remains at your disposal should your plans change." if who else ""
        return f"It is done: your place at {_title(event, language)} is released.{door}"
    if previous == "waitlisted":
        return f"It is done: you are no longer on the waiting list for {_title(event, language)}."
    return f"It is noted: I have sent your regrets for {_title(event, language)}."


def which_to_withdraw(standings: Sequence[Standing], language: str) -> Reply:
    """Ask which event a withdrawal is about, one button per event (at most ten)."""
    text = ("De quel événement s'agit-il ?" if _fr(language) else "Which event is this about?")
    return Reply(text, [_button(s, "cancel_event_rsvp", language) for s in standings[:10]])


def nothing_to_withdraw(language: str) -> Reply:
    """No reply to an upcoming event is linked to this number: nothing to withdraw."""
    if _fr(language):
        return Reply("Je ne trouve aucune réponse à un événement à venir liée à ce numéro.",
                     [{"title": "Nos événements", "payload": "/event_rsvp"}])
    return Reply("I find no reply to an upcoming event linked to this number.",
                 [{"title": "Our events", "payload": "/event_rsvp"}])


# --------------------------------------------------------------------------- short leads


def not_sure_which(language: str) -> str:
    """Said when it is unclear which event the client means."""
    return ("Pardonnez-moi, je ne suis pas certain de l'événement dont vous parlez." if _fr(language)
            else "Forgive me, I am not sure which event you mean.")


def full_lead(event: Event, language: str) -> str:
    """Said when the event chosen has no place left: the waiting list is still open."""
    if _fr(language):
        return (f"Je suis désolé, {_title(event, language)} est complet pour le moment ; je peux "
                "néanmoins vous inscrire sur la liste d'attente.")
    return (f"I am sorry, {_title(event, language)} is full at the moment; I can still put you on "
            "the waiting list.")


def guests_not_understood(language: str) -> str:
    """Said when the number of guests could not be read."""
    return ("Pardonnez-moi, je n'ai pas bien saisi combien d'invités vous accompagneront." if _fr(language)
            else "Forgive me, I did not quite catch how many guests will join you.")


def guests_allowed(event: Event, language: str) -> str:
    """How many guests the invitation allows (none: it is personal)."""
    allowed = event.guests_per_invitation
    if allowed == 0:
        return ("Cette invitation vous est strictement personnelle." if _fr(language)
                else "This invitation is for you alone.")
    if _fr(language):
        return f"Votre invitation est pour vous et {_guest_count(allowed, language)}."
    return f"Your invitation is for you and {_guest_count(allowed, language)}."


def taken_meanwhile(language: str) -> str:
    """Said when the last places were taken while the client was answering."""
    return ("Je suis désolé, les dernières places viennent d'être prises." if _fr(language)
            else "I am sorry, the last places have just been taken.")


def declined_offer_line(record: ClientRecord, language: str) -> str:
    """The client did not want the waiting list (or to confirm): nothing was recorded."""
    who = record.advisor.first_name if record.advisor else None
    if _fr(language):
        return (f"Très bien, je n'ai rien noté. {who} reste à votre disposition." if who
                else "Très bien, je n'ai rien noté.")
    return (f"Very well, I have noted nothing. {who} remains at your disposal." if who
            else "Very well, I have noted nothing.")


def already_declined(event: Event, language: str) -> str:
    """Said when the client's regrets for the event were already sent."""
    return (f"Vos regrets pour {_title(event, language)} ont déjà été transmis." if _fr(language)
            else f"Your regrets for {_title(event, language)} have already been sent.")


def event_begun(event: Event, language: str) -> str:
    """Said when the event has begun: the reply can no longer change."""
    return (f"{_title(event, language)} a déjà commencé ; je ne peux plus modifier votre réponse." if _fr(language)
            else f"{_title(event, language)[0].upper()}{_title(event, language)[1:]} has already begun, "
            "so I can no longer change your reply.")
