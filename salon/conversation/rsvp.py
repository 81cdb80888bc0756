"""Replying to the maison's private events, without Rasa: which event a client means,
how many guests they bring ("just me", "with my husband", "2 guests", "nous serons
trois", "saremo in due"), and the sentences that offer, ask, confirm and withdraw, in
English, French and Italian.

Every event, date, place and count said comes from :mod:`salon.integrations.events`;
French and Italian name an event by its title in guillemets (no article to guess).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time
from typing import Final

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import (
    address,
    agreed,
    button_title,
    gender_of,
    pick,
    say_city,
    say_date_short,
    say_day,
    say_time,
    supported,
)
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
    "invitations_unavailable",
    "replied_line",
    "taken_meanwhile",
    "upcoming_events",
    "which_to_withdraw",
    "withdraw_question",
    "withdrawn_line",
]

OFFER_ATTEND = "attend"
OFFER_WAITLIST = "waitlist"

_NUMBERS = {
    "zero": 0, "no": 0, "none": 0, "aucun": 0, "aucune": 0, "nessuno": 0, "nessun": 0, "one": 1,
    "a": 1, "an": 1, "un": 1, "une": 1, "uno": 1, "una": 1, "single": 1, "two": 2, "deux": 2,
    "due": 2, "couple": 2, "three": 3, "trois": 3, "tre": 3, "four": 4, "quatre": 4,
    "quattro": 4, "five": 5, "cinq": 5, "cinque": 5, "six": 6,
}
_NUMBER = (r"(\d{1,2}|zero|no|none|aucune?|nessuno|nessun|one|an?|une?|uno|una|single|two|deux|due|"
           r"three|trois|tre|four|quatre|quattro|five|cinq|cinque|six)")
_IT_NUMBER = r"(\d{1,2}|due|tre|quattro|cinque)"
_COMPANION = (r"(husband|wife|partner|spouse|fiance|fiancee|daughter|son|mother|mum|mom|father|dad|"
              r"sister|brother|friend|guest|plus one|colleague|girlfriend|boyfriend|mari|femme|epoux|"
              r"epouse|compagnon|compagne|fille|fils|mere|pere|soeur|frere|ami|amie|invite|invitee|"
              r"collegue|marito|moglie|compagn[oa]|fidanzat[oa]|figli[oa]|madre|mamma|padre|papa|"
              r"sorella|fratello|amic[oa]|ospite|collega)")
_ALONE = re.compile(
    r"\b(just me|only me|me only|myself|alone|on my own|by myself|solo|no guests?|without (a )?guests?|"
    r"nobody|no one|no plus one|juste moi|moi seule?|seule?|sans invitee?s?|soltanto io|da sol[ao]|"
    r"io sol[ao]|senza ospiti|nessun ospite)\b")
_GUESTS = re.compile(rf"\b{_NUMBER} (extra |additional |more |altri |altre )?(guests?|invitee?s?|"
                     r"accompagnant(e|s|es)?|friends?|amie?s?|people with me|personnes? avec moi|"
                     r"ospiti|ospite|accompagnator[ei]|amic(?:o|a|i|he))\b")
_PLUS = re.compile(r"(?:^|\s)\+\s?(\d{1,2})\b|\bplus (one|two|1|2)\b")
_PARTY = re.compile(
    rf"\b(?:{_NUMBER} of us|we(?: ll| will)? be {_NUMBER}|there will be {_NUMBER}|party of {_NUMBER}|"
    rf"for {_NUMBER}(?: people| persons| places| seats)?\b|{_NUMBER} (?:people|persons|places|seats|personnes|persone)|"
    rf"nous (?:serons|viendrons)(?: a)? {_NUMBER}|a {_NUMBER}\b|pour {_NUMBER}|"
    rf"(?:saremo|siamo|veniamo)(?: in)? {_IT_NUMBER}\b|in {_IT_NUMBER}\b)")
_TOGETHER = re.compile(rf"\b(both of us|the two of us|nous deux|a deux|noi due|me and my {_COMPANION}|"
                       rf"my {_COMPANION} and (i|me)|with (my|a|an|one) {_COMPANION}|avec (mon|ma|un|une) "
                       rf"{_COMPANION}|mon {_COMPANION} et moi|ma {_COMPANION} et moi|et mon {_COMPANION}|"
                       rf"et ma {_COMPANION}|bring(ing)? (my|a|one) {_COMPANION}|my {_COMPANION} (will|would|is|can) |"
                       rf"con (il |la )?(mio|mia|un|una|uno) {_COMPANION}|(mio|mia) {_COMPANION} e io|"
                       rf"io e (mio|mia) {_COMPANION}|porto (mio|mia|il mio|la mia|un|una) {_COMPANION})")
_BARE = re.compile(r"^(\d{1,2}|zero|none|aucune?|nessuno|one|une?|uno|una|two|deux|due|three|trois|tre|"
                   r"four|quatre|quattro|five|cinq|cinque|six|no)$")


def _count(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBERS.get(word)


def parse_guests(text: str | None, *, bare: bool = True) -> int | None:
    """How many guests come with the client: "just me" 0, "with my husband" 1, "2 guests"
    2, "+1" 1, "we'll be three" 2, "nous serons deux" 1, "con mio marito" 1, "saremo in tre" 2. A bare number (or "no") counts
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

_STOP = frozenset("the a an of de la le les du des d l to for at in au with my il lo gli di del della "
                  "per al alla con mio mia".split())
_ALIASES = {
    "jewellery": "joaillerie", "jewelry": "joaillerie", "bijoux": "joaillerie", "joaillerie": "joaillerie",
    "autumn": "automne", "fall": "automne", "automne": "automne", "preview": "avant premiere",
    "avant": "avant premiere", "premiere": "avant premiere", "trunk": "trunk", "show": "trunk",
    "londres": "london", "londra": "london", "mayfair": "london", "mount": "london", "faubourg": "paris",
    "honore": "paris", "milano": "milan", "spiga": "milan", "montenapoleone": "milan",
    "parigi": "paris", "gioielli": "joaillerie", "gioielleria": "joaillerie",
    "autunno": "automne", "autunnale": "automne", "anteprima": "avant premiere",
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

#: Every sentence of the event conversation, by language. A key ending in ``_named`` is
#: said when the client has an advisor (``{who}``), its ``_anon`` twin otherwise.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "the {title}", "and": "and",
        "describe": "{title} on {day} at {hour} in {city}",
        "guest": "{n} guest", "guests": "{n} guests",
        "you": "you", "you_and": "you and {guests}",
        "your_guest": "your guest", "your_guests": "your {n} guests",
        "alone": "on your own", "with": "with {guests}",
        "note_accepted": " (you are expected {with})",
        "note_waitlisted": " (you are on the waiting list)",
        "choose": "With pleasure. You are invited to {listed}. Which would you like to reply to?",
        "just_me": "Just me", "with_one": "With a guest", "with_n": "With {guests}",
        "expected": "You are expected at {title} {with}. ",
        "ask_guests": "{now}Will anyone be joining you{at}? Your invitation is for you and {allowed}.",
        "ask_at": " at {title}",
        "full": "{title} is full",
        "one_left": "only one place remains at {title}",
        "n_left": "only {n} places remain at {title}",
        "waitlist_offer": "I am sorry, {why}. Shall I put {who} on the waiting list?",
        "waitlist_who0": "you", "waitlist_whoN": "you and {yours}",
        "join_waitlist": "Join the waitlist", "speak_to": "Speak to {who}",
        "an_advisor": "Speak to an advisor", "no_thanks": "No, thank you",
        "confirm": "So that is {title}, {day} at {hour}, {venue}, for {party}. Shall I confirm?",
        "yes_confirm": "Yes, please confirm", "change_guests": "Change guests",
        "dress": " Dress code: {code}.",
        "waitlisted": "It is noted, {name}: {who} on the waiting list for {title} on {day}.",
        "waitlisted_who0": "you are", "waitlisted_whoN": "you and {yours} are",
        "confirmed": "It is confirmed", "updated": "Your reply is updated",
        "replied": "{head}, {name}: {title}, {day} at {hour}, {venue}, for {party}.{dress}{host}",
        "host": " {who} looks forward to welcoming you.",
        "upcoming": "You are invited to {listed}.",
        "none_there": "None of the evenings you are invited to is in {city}. ",
        "upcoming_ask": " Would you like to reply?",
        "upcoming_unavailable": "Forgive me, I cannot see your invitations at this moment. Could you ask me again in a little while?",
        "upcoming_none_named": ("I see no invitation for you at the moment. {who} will gladly tell you "
                                "about the maison's coming evenings."),
        "upcoming_none_anon": ("I see no invitation for you at the moment. Your client advisor will "
                               "gladly tell you about the maison's coming evenings."),
        "no_event_named": ("There is no event awaiting a reply at the moment. {who} will gladly "
                           "tell you about the maison's coming evenings."),
        "no_event_anon": ("There is no event awaiting a reply at the moment. Your client advisor "
                          "will gladly tell you about the maison's coming evenings."),
        "closed_named": "Replies for {title} closed on {day}. {who} will gladly see what is still possible.",
        "closed_anon": ("Replies for {title} closed on {day}. Your client advisor will gladly see "
                        "what is still possible."),
        "cancel_place": "Shall I cancel your place at {title} on {day}?",
        "yes_cancel": "Yes, cancel it", "keep_place": "Keep my place",
        "leave_waitlist": "Shall I take you off the waiting list for {title}?",
        "yes_please": "Yes, please", "stay_on": "Stay on it",
        "send_regrets": "Shall I send your regrets for {title} on {day}?", "not_yet": "Not yet",
        "released": "It is done: your place at {title} is released.{door}",
        "door": " {who} remains at your disposal should your plans change.",
        "off_waitlist": "It is done: you are no longer on the waiting list for {title}.",
        "regrets_sent": "It is noted: I have sent your regrets for {title}.",
        "which": "Which event is this about?",
        "nothing": "I find no reply to an upcoming event linked to this number.",
        "our_events": "Our events",
        "not_sure": "Forgive me, I am not sure which event you mean.",
        "full_lead": ("I am sorry, {title} is full at the moment; I can still put you on the "
                      "waiting list."),
        "guests_unclear": "Forgive me, I did not quite catch how many guests will join you.",
        "personal": "This invitation is for you alone.",
        "allowed": "Your invitation is for you and {guests}.",
        "taken": "I am sorry, the last places have just been taken.",
        "declined_named": "Very well, I have noted nothing. {who} remains at your disposal.",
        "declined_anon": "Very well, I have noted nothing.",
        "already_declined": "Your regrets for {title} have already been sent.",
        "begun": "{title} has already begun, so I can no longer change your reply.",
    },
    "fr": {
        "title": "« {title} »", "and": "et",
        "describe": "{title}, {day} à {hour} à {city}",
        "guest": "{n} invité", "guests": "{n} invités",
        "you": "vous", "you_and": "vous et {guests}",
        "your_guest": "votre invité", "your_guests": "vos {n} invités",
        "alone": "sans invité", "with": "avec {guests}",
        "note_accepted": " (votre venue est confirmée, {with})",
        "note_waitlisted": " (vous êtes sur liste d'attente)",
        "choose": "Avec plaisir. Vos invitations : {listed}. À laquelle souhaitez-vous répondre ?",
        "just_me": "Rien que moi", "just_me_f": "Je viendrai seule", "just_me_m": "Je viendrai seul",
        "with_one": "Avec un invité", "with_n": "Avec {guests}",
        "expected": "Votre venue à {title} est confirmée, {with}. ",
        "ask_guests": ("{now}Viendrez-vous avec quelqu'un{at} ? Votre invitation est valable "
                       "pour vous et {allowed}."),
        "ask_guests_f": ("{now}Serez-vous accompagnée{at} ? Votre invitation est valable pour "
                         "vous et {allowed}."),
        "ask_guests_m": ("{now}Serez-vous accompagné{at} ? Votre invitation est valable pour "
                         "vous et {allowed}."),
        "ask_at": " pour {title}",
        "full": "{title} affiche complet",
        "one_left": "il ne reste qu'une place pour {title}",
        "n_left": "il ne reste que {n} places pour {title}",
        "waitlist_offer": ("Je suis désolé, {why}. Souhaitez-vous que je vous inscrive sur la "
                           "liste d'attente{party} ?"),
        "waitlist_partyN": ", avec {yours}",
        "join_waitlist": "Liste d'attente", "speak_to": "Parler à {who}",
        "an_advisor": "Un conseiller", "no_thanks": "Non, merci",
        "confirm": ("Je confirme donc votre venue à {title}, le {day} à {hour}, {venue}, pour "
                    "{party} ?"),
        "yes_confirm": "Oui, je confirme", "change_guests": "Modifier le nombre",
        "dress": " Code vestimentaire : {code}.",
        "waitlisted": "C'est noté, {name} : vous êtes sur la liste d'attente de {title}, {day}{party}.",
        "waitlisted_partyN": ", avec {yours}",
        "confirmed": "C'est confirmé", "updated": "Votre réponse a bien été modifiée",
        "replied": "{head}, {name} : {title}, {day} à {hour}, {venue}, pour {party}.{dress}{host}",
        "host": " {who} se réjouit de vous y accueillir.",
        "upcoming": "Vos invitations : {listed}.",
        "none_there": "Parmi vos invitations, aucune soirée n'a lieu à {city}. ",
        "upcoming_f": "Vous êtes invitée à {listed}.",
        "upcoming_m": "Vous êtes invité à {listed}.",
        "upcoming_ask": " Souhaitez-vous répondre ?",
        "upcoming_unavailable": ("Pardonnez-moi, je ne parviens pas à consulter vos invitations à "
                                 "l'instant. Pourriez-vous me reposer la question dans un moment ?"),
        "upcoming_none_named": ("Je ne vois aucune invitation à votre nom pour le moment. {who} se "
                                "fera un plaisir de vous parler des prochaines soirées de la maison."),
        "upcoming_none_anon": ("Je ne vois aucune invitation à votre nom pour le moment. L'un de nos "
                               "conseillers se fera un plaisir de vous parler des prochaines soirées "
                               "de la maison."),
        "no_event_named": ("Aucune invitation n'attend votre réponse pour le moment. {who} se "
                           "fera un plaisir de vous parler des prochaines soirées de la maison."),
        "no_event_anon": ("Aucune invitation n'attend votre réponse pour le moment. L'un de nos "
                          "conseillers se fera un plaisir de vous parler des prochaines soirées "
                          "de la maison."),
        "closed_named": ("Les réponses pour {title} étaient attendues jusqu'au {day}. {who} verra "
                         "volontiers ce qui est encore possible."),
        "closed_anon": ("Les réponses pour {title} étaient attendues jusqu'au {day}. L'un de nos "
                        "conseillers verra volontiers ce qui est encore possible."),
        "cancel_place": "Souhaitez-vous que j'annule votre venue à {title}, {day} ?",
        "yes_cancel": "Oui, annuler", "keep_place": "Garder ma place",
        "leave_waitlist": "Souhaitez-vous que je vous retire de la liste d'attente de {title} ?",
        "yes_please": "Oui, merci", "stay_on": "Rester sur la liste",
        "send_regrets": "Souhaitez-vous que je transmette vos regrets pour {title}, {day} ?",
        "not_yet": "Pas encore",
        "released": "C'est fait : votre place à {title} est libérée.{door}",
        "door": " {who} reste à votre disposition si vos projets changent.",
        "off_waitlist": "C'est fait : vous n'êtes plus sur la liste d'attente de {title}.",
        "regrets_sent": "C'est noté : j'ai transmis vos regrets pour {title}.",
        "which": "De quel événement s'agit-il ?",
        "nothing": "Je ne trouve aucune réponse à un événement à venir liée à ce numéro.",
        "our_events": "Nos événements",
        "not_sure": "Pardonnez-moi, je ne suis pas certain de l'événement dont vous parlez.",
        "full_lead": ("Je suis désolé, {title} affiche complet pour le moment ; je peux "
                      "néanmoins vous inscrire sur la liste d'attente."),
        "guests_unclear": "Pardonnez-moi, je n'ai pas bien saisi combien d'invités vous accompagneront.",
        "personal": "Cette invitation vous est strictement personnelle.",
        "allowed": "Votre invitation est valable pour vous et {guests}.",
        "taken": "Je suis désolé, les dernières places viennent d'être prises.",
        "declined_named": "Très bien, je n'enregistre rien. {who} reste à votre disposition.",
        "declined_anon": "Très bien, je n'enregistre rien.",
        "already_declined": "Vos regrets pour {title} ont déjà été transmis.",
        "begun": "{title} a déjà commencé ; je ne peux plus modifier votre réponse.",
    },
    "it": {
        "title": "«{title}»", "and": "e",
        "describe": "{title}, {day} alle {hour} a {city}",
        "guest": "{n} ospite", "guests": "{n} ospiti",
        "you": "Lei", "you_and": "Lei e {guests}",
        "your_guest": "il Suo ospite", "your_guests": "i Suoi {n} ospiti",
        "alone": "senza ospiti", "with": "con {guests}",
        "note_accepted": " (la Sua presenza è confermata, {with})",
        "note_waitlisted": " (è in lista d'attesa)",
        "choose": "Con piacere. I Suoi inviti: {listed}. A quale desidera rispondere?",
        "just_me": "Solo io", "with_one": "Con un ospite", "with_n": "Con {guests}",
        "expected": "La Sua presenza a {title} è confermata, {with}. ",
        "ask_guests": "{now}Verrà con qualcuno{at}? L'invito è valido per Lei e {allowed}.",
        "ask_at": " a {title}",
        "full": "{title} è al completo",
        "one_left": "per {title} resta un solo posto",
        "n_left": "per {title} restano solo {n} posti",
        "waitlist_offer": "Mi dispiace, {why}. Desidera che La inserisca in lista d'attesa{party}?",
        "waitlist_partyN": ", con {yours}",
        "join_waitlist": "Lista d'attesa", "speak_to": "Parlare con {who}",
        "an_advisor": "Un consulente", "no_thanks": "No, grazie",
        "confirm": ("Confermo quindi la Sua partecipazione a {title}, {day} alle {hour}, {venue}, "
                    "per {party}?"),
        "yes_confirm": "Sì, confermo", "change_guests": "Cambiare ospiti",
        "dress": " Dress code: {code}.",
        "waitlisted": "Ho preso nota, {name}: è in lista d'attesa per {title}, {day}{party}.",
        "waitlisted_partyN": ", con {yours}",
        "confirmed": "Presenza confermata", "updated": "Risposta aggiornata",
        "replied": "{head}, {name}: {title}, {day} alle {hour}, {venue}, per {party}.{dress}{host}",
        "host": " {who} La attende con piacere.",
        "upcoming": "I Suoi inviti: {listed}.",
        "none_there": "Tra i Suoi inviti non c'è una serata a {city}. ",
        "upcoming_f": "È invitata a {listed}.",
        "upcoming_m": "È invitato a {listed}.",
        "upcoming_ask": " Desidera rispondere?",
        "upcoming_unavailable": ("Mi scusi, in questo momento non riesco a consultare i Suoi inviti. "
                                 "Potrebbe chiedermelo di nuovo tra poco?"),
        "upcoming_none_named": ("Al momento non vedo inviti a Suo nome. {who} Le parlerà volentieri "
                                "delle prossime serate della maison."),
        "upcoming_none_anon": ("Al momento non vedo inviti a Suo nome. Uno dei nostri consulenti Le "
                               "parlerà volentieri delle prossime serate della maison."),
        "no_event_named": ("Al momento non ci sono eventi in attesa di una Sua risposta. {who} Le "
                           "parlerà volentieri delle prossime serate della maison."),
        "no_event_anon": ("Al momento non ci sono eventi in attesa di una Sua risposta. Uno dei "
                          "nostri consulenti Le parlerà volentieri delle prossime serate della "
                          "maison."),
        "closed_named": ("Le risposte per {title} erano attese entro {day}. {who} verificherà "
                         "volentieri che cosa sia ancora possibile."),
        "closed_anon": ("Le risposte per {title} erano attese entro {day}. Uno dei nostri "
                        "consulenti verificherà volentieri che cosa sia ancora possibile."),
        "cancel_place": "Desidera che annulli la Sua partecipazione a {title}, {day}?",
        "yes_cancel": "Sì, annulli pure", "keep_place": "Mantengo il posto",
        "leave_waitlist": "Desidera che La tolga dalla lista d'attesa per {title}?",
        "yes_please": "Sì, grazie", "stay_on": "Restare in lista",
        "send_regrets": "Desidera che comunichi la Sua assenza a {title}, {day}?",
        "not_yet": "Non ancora",
        "released": "Fatto: il Suo posto a {title} è stato liberato.{door}",
        "door": " {who} resta a Sua disposizione se i Suoi programmi dovessero cambiare.",
        "off_waitlist": "Fatto: non è più in lista d'attesa per {title}.",
        "regrets_sent": "Ho preso nota: ho comunicato la Sua assenza a {title}.",
        "which": "Di quale evento si tratta?",
        "nothing": "Non trovo risposte a eventi in programma collegate a questo numero.",
        "our_events": "I nostri eventi",
        "not_sure": "Mi perdoni, non ho capito di quale evento parla.",
        "full_lead": ("Mi dispiace, {title} è al momento al completo; posso comunque inserirLa "
                      "in lista d'attesa."),
        "guests_unclear": "Mi perdoni, non ho capito quanti ospiti La accompagneranno.",
        "personal": "Questo invito è strettamente personale.",
        "allowed": "L'invito è valido per Lei e {guests}.",
        "taken": "Mi dispiace, gli ultimi posti sono appena stati assegnati.",
        "declined_named": "Va bene, non ho registrato nulla. {who} resta a Sua disposizione.",
        "declined_anon": "Va bene, non ho registrato nulla.",
        "already_declined": "La Sua assenza a {title} è già stata comunicata.",
        "begun": "L'evento {title} è già iniziato; non posso più modificare la Sua risposta.",
    },
}
_NUMBER_NAMES: Final[dict[str, dict[int, str]]] = {
    "en": {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"},
    "fr": {1: "un", 2: "deux", 3: "trois", 4: "quatre", 5: "cinq"},
    "it": {1: "un", 2: "due", 3: "tre", 4: "quattro", 5: "cinque"},
}


def _w(language: str) -> dict[str, str]:
    return pick(_WORDS, language)


def _say(language: str, key: str, **values: object) -> str:
    """The sentence ``key`` in ``language`` with ``values``; "" when the language has no
    such key (a part it does not say).
    """
    text = _w(language).get(key)
    return text.format(**values) if text is not None else ""


def _city(event: Event, language: str) -> str:
    return say_city(event.venue.city, language)


def _title(event: Event, language: str) -> str:
    return _say(language, "title", title=event.title_in(supported(language)))


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (a sentence opening on a title)."""
    return text[:1].upper() + text[1:]


def describe(event: Event, language: str) -> str:
    """"the Autumn collection preview on Thursday 10 December at 18:30 in Paris" /
    "« Avant-première de la collection d'automne », jeudi 10 décembre à 18 h 30 à Paris" /
    "«Anteprima della collezione autunnale», giovedì 10 dicembre alle 18:30 a Parigi".
    """
    local = event.starts_at.astimezone(event.venue.zone)
    return _say(language, "describe", title=_title(event, language), day=say_day(local, language),
                hour=say_time(local, language), city=_city(event, language))


def _number(n: int, language: str) -> str:
    return pick(_NUMBER_NAMES, language).get(n, str(n))


def _guest_count(n: int, language: str) -> str:
    """"one guest" / "un invité" / "un ospite"."""
    return _say(language, "guests" if n > 1 else "guest", n=_number(n, language))


def _for(guests: int, language: str) -> str:
    """"you and one guest" / "vous et un invité" / "Lei e un ospite" (just "you" alone)."""
    if guests == 0:
        return _say(language, "you")
    return _say(language, "you_and", guests=_guest_count(guests, language))


def _yours(guests: int, language: str) -> str:
    """"your guest" / "your two guests"; "votre invité" / "vos deux invités"; "il Suo
    ospite" / "i Suoi due ospiti".
    """
    if guests == 1:
        return _say(language, "your_guest")
    return _say(language, "your_guests", n=_number(guests, language))


def _with(guests: int, language: str) -> str:
    if guests == 0:
        return _say(language, "alone")
    return _say(language, "with", guests=_guest_count(guests, language))


def _button(standing: Standing, intent: str, language: str) -> dict[str, str]:
    """"London, 21 Jan" / "Londres, 21 janv." / "Londra, 21 gen" (≤ 20 characters)."""
    local = standing.event.starts_at.astimezone(standing.event.venue.zone)
    day = say_date_short(local, language)
    title = button_title(f"{_city(standing.event, language)}, {day}", day)
    return {"title": title, "payload": f'/{intent}{{"rsvp_event": "{standing.event.id}"}}'}


def _status_note(standing: Standing, language: str) -> str:
    reply = standing.reply
    if reply is None:
        return ""
    if reply.status == "accepted":
        return _say(language, "note_accepted", **{"with": _with(reply.guests, language)})
    if reply.status == "waitlisted":
        return _say(language, "note_waitlisted")
    return ""


def _listed(standings: Sequence[Standing], language: str) -> str:
    items = [f"{describe(s.event, language)}{_status_note(s, language)}" for s in standings]
    if supported(language) == "en":
        return " and ".join(items) if len(items) <= 2 else "; ".join(items[:-1]) + "; and " + items[-1]
    return " ; ".join(items) if supported(language) == "fr" else "; ".join(items)


def choose_event(standings: Sequence[Standing], language: str) -> Reply:
    """Which event: each named with its day and city, one button (or list row) each."""
    return Reply(_say(language, "choose", listed=_listed(standings, language)),
                 [_button(s, "inform", language) for s in standings[:10]])


def upcoming_events(standings: Sequence[Standing], record: ClientRecord, language: str,
                    boutique: str | None = None, city: str | None = None) -> Reply:
    """What is coming for the client who asks: the evenings she is invited to, soonest
    first, with her reply where she gave one, and a button to reply to each still open
    (which starts the reply with that event chosen). None coming: her advisor will tell
    her of the next ones. Asked about one boutique (its id, in ``city``): the evenings
    there, or that none of hers is there before the others (nothing is said of evenings
    she is not invited to).
    """
    if not standings:
        return Reply(_advisor_said(record, language, "upcoming_none"), [_advisor_button(record, language)])
    lead = ""
    if boutique:
        there = [s for s in standings if s.event.venue.boutique_id == boutique]
        if there:
            standings = there
        else:
            lead = _say(language, "none_there", city=say_city(city or boutique.title(), language))
    open_ = [s for s in standings if s.open]
    text = lead + agreed(_w(language), "upcoming", gender_of(record)).format(listed=_listed(standings, language))
    if open_:
        text += _say(language, "upcoming_ask")
    return Reply(text, [_button(s, "event_rsvp", language) for s in open_[:10]])


def invitations_unavailable(language: str) -> str:
    """The events book cannot be read at this moment: she is asked to try again shortly."""
    return _say(language, "upcoming_unavailable")


def ask_guests(standing: Standing, language: str, gender: str | None = None) -> Reply:
    """Ask whether anyone joins the client: a "just me" button and one per guest count
    the invitation allows (two at most); a place already confirmed is recalled first. In
    French, agreed with her title (``gender``: :func:`salon.conversation.phrasing.gender_of`).
    """
    event = standing.event
    allowed = event.guests_per_invitation
    reply = standing.reply
    words = _w(language)
    buttons = [{"title": agreed(words, "just_me", gender), "payload": '/inform{"rsvp_guests": "0"}'}]
    for n in range(1, min(allowed, 2) + 1):
        title = (_say(language, "with_one") if n == 1
                 else _say(language, "with_n", guests=_guest_count(n, language)))
        buttons.append({"title": button_title(title), "payload": f'/inform{{"rsvp_guests": "{n}"}}'})
    title = _title(event, language)
    now = (_say(language, "expected", title=title, **{"with": _with(reply.guests, language)})
           if standing.attending and reply is not None else "")
    text = agreed(words, "ask_guests", gender).format(
        now=now, at="" if now else _say(language, "ask_at", title=title), allowed=_guest_count(allowed, language))
    return Reply(text, buttons)


def _places_left(left: int, event: Event, language: str) -> str:
    title = _title(event, language)
    if left == 0:
        return _say(language, "full", title=title)
    if left == 1:
        return _say(language, "one_left", title=title)
    return _say(language, "n_left", title=title, n=_number(left, language))


def _waitlist_offer(standing: Standing, guests: int, language: str,
                    person: str | None) -> Reply:
    """The party no longer fits: the waiting list, the advisor, or nothing."""
    why = _places_left(standing.remaining, standing.event, language)
    suffix = "0" if guests == 0 else "N"
    yours = _yours(guests, language) if guests else ""
    text = _say(language, "waitlist_offer", why=why,
                who=_say(language, f"waitlist_who{suffix}", yours=yours),
                party=_say(language, f"waitlist_party{suffix}", yours=yours))
    advisor = (button_title(_say(language, "speak_to", who=person), person,
                            _say(language, "an_advisor"))
               if person else _say(language, "an_advisor"))
    return Reply(text, [{"title": _say(language, "join_waitlist"), "payload": "/affirm"},
                        {"title": advisor, "payload": "/talk_to_advisor"},
                        {"title": _say(language, "no_thanks"), "payload": "/deny"}])


def confirm_question(standing: Standing, guests: int, language: str,
                     advisor_first_name: str | None) -> tuple[Reply, str]:
    """The summary to confirm, or, when the client and their guests no longer fit, the
    waiting list offered with the advisor; and which of the two was offered.
    """
    if not standing.has_room_for(guests):
        return _waitlist_offer(standing, guests, language, advisor_first_name), OFFER_WAITLIST
    event = standing.event
    local = event.starts_at.astimezone(event.venue.zone)
    text = _say(language, "confirm", title=_title(event, language), day=say_day(local, language),
                hour=say_time(local, language), venue=event.venue.name,
                party=_for(guests, language))
    change = event.guests_per_invitation > 0
    return Reply(text, [
        {"title": _say(language, "yes_confirm"), "payload": "/affirm"},
        {"title": _say(language, "change_guests" if change else "no_thanks"), "payload": "/deny"},
    ]), OFFER_ATTEND


def _dress(event: Event, language: str) -> str:
    code = event.dress_code_in(supported(language))
    if not code:
        return ""
    return _say(language, "dress", code=code[0].lower() + code[1:])


def replied_line(rsvp: Rsvp, event: Event, record: ClientRecord, language: str, *,
                 changed: bool = False) -> str:
    """The one line that confirms what was recorded: the place (or the waiting list),
    who comes, when and where.
    """
    local = event.starts_at.astimezone(event.venue.zone)
    day, hour = say_day(local, language), say_time(local, language)
    name = address(record, language)
    title = _title(event, language)
    if rsvp.status == "waitlisted":
        suffix = "0" if rsvp.guests == 0 else "N"
        yours = _yours(rsvp.guests, language) if rsvp.guests else ""
        return _say(language, "waitlisted", name=name, title=title, day=day,
                    who=_say(language, f"waitlisted_who{suffix}", yours=yours),
                    party=_say(language, f"waitlisted_party{suffix}", yours=yours))
    advisor = record.advisor.first_name if record.advisor else None
    return _say(language, "replied", head=_say(language, "updated" if changed else "confirmed"),
                name=name, title=title, day=day, hour=hour, venue=event.venue.name,
                party=_for(rsvp.guests, language), dress=_dress(event, language),
                host=_say(language, "host", who=advisor) if advisor else "")


def _advisor_button(record: ClientRecord | None, language: str) -> dict[str, str]:
    advisor = record.advisor.first_name if record is not None and record.advisor else None
    anyone = _say(language, "an_advisor")
    title = button_title(_say(language, "speak_to", who=advisor), advisor, anyone) if advisor else anyone
    return {"title": title, "payload": "/talk_to_advisor"}


def _advisor_said(record: ClientRecord, language: str, key: str, **values: object) -> str:
    """Sentence ``key`` naming the client's advisor (``_named``), or not (``_anon``)."""
    who = record.advisor.first_name if record.advisor else None
    return _say(language, f"{key}_named" if who else f"{key}_anon", who=who, **values)


def no_event_line(record: ClientRecord, language: str) -> Reply:
    """No event awaits the client's reply: her advisor will tell her of the coming ones."""
    return Reply(_advisor_said(record, language, "no_event"), [_advisor_button(record, language)])


def closed_line(event: Event, record: ClientRecord, language: str) -> Reply:
    """Replies are closed (the ``rsvp_by`` day has passed): the advisor sees what is possible."""
    last = event.rsvp_by or event.starts_at.astimezone(event.venue.zone).date()
    day = say_day(datetime.combine(last, time(12), tzinfo=event.venue.zone), language)
    return Reply(_advisor_said(record, language, "closed", title=_title(event, language), day=day),
                 [_advisor_button(record, language)])


def withdraw_question(standing: Standing, language: str) -> Reply:
    """Asked once before a reply is withdrawn: a place, a waiting list, or regrets."""
    event = standing.event
    day = say_day(event.starts_at.astimezone(event.venue.zone), language)
    title = _title(event, language)
    status = standing.reply.status if standing.reply else None
    question, yes, no = {
        "accepted": ("cancel_place", "yes_cancel", "keep_place"),
        "waitlisted": ("leave_waitlist", "yes_please", "stay_on"),
    }.get(status or "", ("send_regrets", "yes_please", "not_yet"))
    return Reply(_say(language, question, title=title, day=day),
                 [{"title": _say(language, yes), "payload": "/affirm"},
                  {"title": _say(language, no), "payload": "/deny"}])


def withdrawn_line(event: Event, previous: str | None, record: ClientRecord, language: str) -> str:
    """The line confirming a withdrawal: the place released, off the waiting list, or the
    regrets sent (``previous``: the reply withdrawn).
    """
    title = _title(event, language)
    if previous == "accepted":
        who = record.advisor.first_name if record.advisor else None
        door = _say(language, "door", who=who) if who else ""
        return _say(language, "released", title=title, door=door)
    if previous == "waitlisted":
        return _say(language, "off_waitlist", title=title)
    return _say(language, "regrets_sent", title=title)


def which_to_withdraw(standings: Sequence[Standing], language: str) -> Reply:
    """Ask which event a withdrawal is about, one button per event (at most ten)."""
    return Reply(_say(language, "which"),
                 [_button(s, "cancel_event_rsvp", language) for s in standings[:10]])


def nothing_to_withdraw(language: str) -> Reply:
    """No reply to an upcoming event is linked to this number: nothing to withdraw."""
    return Reply(_say(language, "nothing"),
                 [{"title": _say(language, "our_events"), "payload": "/event_rsvp"}])


# --------------------------------------------------------------------------- short leads


def not_sure_which(language: str) -> str:
    """Said when it is unclear which event the client means."""
    return _say(language, "not_sure")


def full_lead(event: Event, language: str) -> str:
    """Said when the event chosen has no place left: the waiting list is still open."""
    return _say(language, "full_lead", title=_title(event, language))


def guests_not_understood(language: str) -> str:
    """Said when the number of guests could not be read."""
    return _say(language, "guests_unclear")


def guests_allowed(event: Event, language: str) -> str:
    """How many guests the invitation allows (none: it is personal)."""
    allowed = event.guests_per_invitation
    if allowed == 0:
        return _say(language, "personal")
    return _say(language, "allowed", guests=_guest_count(allowed, language))


def taken_meanwhile(language: str) -> str:
    """Said when the last places were taken while the client was answering."""
    return _say(language, "taken")


def declined_offer_line(record: ClientRecord, language: str) -> str:
    """The client did not want the waiting list (or to confirm): nothing was recorded."""
    return _advisor_said(record, language, "declined")


def already_declined(event: Event, language: str) -> str:
    """Said when the client's regrets for the event were already sent."""
    return _say(language, "already_declined", title=_title(event, language))


def event_begun(event: Event, language: str) -> str:
    """Said when the event has begun: the reply can no longer change."""
    return _sentence(_say(language, "begun", title=_title(event, language)))
