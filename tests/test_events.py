"""The events port on SQLite and PostgreSQL: who may reply (the audience's tiers or an
invitation by name), guests within the invitation, the reply deadline in the boutique's
time zone, places counted in people, the waiting list, withdrawals, and no overbooking
when many clients reply at once; and how the conversation reads the event a client
names and the guests they bring."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from salon.clock import ManualClock
from salon.config import Settings
from salon.conversation.rsvp import (
    closed_line,
    confirm_question,
    find_event,
    full_lead,
    no_event_line,
    parse_guests,
    withdraw_question,
)
from salon.integrations.crm import ClientRecord
from salon.integrations.events import (
    EventFull,
    NotInvited,
    RsvpClosed,
    SqlEvents,
    TooManyGuests,
    UnknownEvent,
)
from salon.integrations.schema import event_rsvps, events
from salon.integrations.seed import seed_database
from salon.privacy.rights import default_registry
from salon.storage.db import make_async_engine, make_sync_engine

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
PARIS_PREVIEW = "paris-aw27-preview"  # VIC and Platinum, 60 places, one guest, reply by 3 Dec
TRUNK_SHOW = "london-haute-joaillerie-2027"  # VIC, Platinum, Gold, 30 places, reply by 12 Jan


@pytest.fixture()
async def book(database_url: str) -> AsyncIterator[tuple[SqlEvents, ManualClock]]:
    seed_database(database_url)
    engine = make_async_engine(database_url)
    clock = ManualClock(NOW)
    yield SqlEvents(engine, clock), clock
    await engine.dispose()


def set_capacity(url: str, event_id: str, capacity: int) -> None:
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == event_id).values(capacity=capacity))
    engine.dispose()


async def test_upcoming_events_as_each_client_sees_them(book: tuple[SqlEvents, ManualClock]) -> None:
    port, _ = book
    claire = await port.upcoming_for("C-001")  # VIC: both; accepted the preview with a guest
    assert [s.event.id for s in claire] == [PARIS_PREVIEW, TRUNK_SHOW]
    preview, show = claire
    assert preview.reply is not None and (preview.reply.status, preview.reply.guests) == ("accepted", 1)
    assert preview.attending and preview.open and preview.taken == 5 and preview.remaining == 55
    assert show.reply is None and show.taken == 3 and show.event.venue.city == "London"
    assert preview.event.title_in("fr") == "Avant-première de la collection d'automne"
    assert preview.event.title_in("it") == "Anteprima della collezione autunnale"
    assert show.event.dress_code_in("fr") == "Smoking facultatif"
    assert show.event.dress_code_in("it") == "Black tie facoltativo"
    assert preview.event.replies_close_at == datetime(2026, 12, 4, 0, 0, tzinfo=preview.event.venue.zone)
    # Gold is not invited to the Paris preview; a Prospect to nothing.
    assert [s.event.id for s in await port.upcoming_for("C-003")] == [TRUNK_SHOW]
    assert await port.upcoming_for("C-007") == []
    assert await port.upcoming_for("C-999") == []
    assert await port.standing(PARIS_PREVIEW, "C-003") is None


async def test_accept_change_and_decline(book: tuple[SqlEvents, ManualClock]) -> None:
    port, clock = book
    made = await port.reply(TRUNK_SHOW, "C-001", guests=1)
    assert (made.status, made.guests, made.responded_at) == ("accepted", 1, NOW)
    standing = await port.standing(TRUNK_SHOW, "C-001")
    assert standing is not None and standing.taken == 5 and standing.reply == made
    clock.advance(timedelta(hours=1))
    changed = await port.reply(TRUNK_SHOW, "C-001", guests=0)  # a change, not a second place
    assert changed.guests == 0 and (await port.standing(TRUNK_SHOW, "C-001")).taken == 4  # type: ignore[union-attr]
    # The seeded note stays with the reply when it changes.
    kept = await port.reply(PARIS_PREVIEW, "C-004", guests=0)
    assert kept.notes == "Coming with her daughter."
    declined = await port.decline(TRUNK_SHOW, "C-001")
    assert declined is not None and declined.status == "declined"
    assert (await port.standing(TRUNK_SHOW, "C-001")).taken == 3  # type: ignore[union-attr]
    assert await port.decline(TRUNK_SHOW, "C-001") is None  # already
    # Declining an invitation never answered writes the row (a Gold client, no row yet).
    assert (await port.decline(TRUNK_SHOW, "C-005")).status == "declined"  # type: ignore[union-attr]
    # A decline can be changed back into an acceptance while replies are open.
    assert (await port.reply(TRUNK_SHOW, "C-001", guests=1)).status == "accepted"


async def test_who_may_reply_and_how_many_guests(book: tuple[SqlEvents, ManualClock]) -> None:
    port, _ = book
    with pytest.raises(NotInvited):
        await port.reply(PARIS_PREVIEW, "C-003", guests=0)  # Gold
    with pytest.raises(NotInvited):
        await port.decline(PARIS_PREVIEW, "C-003")
    with pytest.raises(NotInvited):
        await port.reply(TRUNK_SHOW, "C-018", guests=0)  # Prospect
    with pytest.raises(TooManyGuests):
        await port.reply(TRUNK_SHOW, "C-001", guests=2)
    with pytest.raises(TooManyGuests):
        await port.reply(TRUNK_SHOW, "C-001", guests=-1)
    with pytest.raises(UnknownEvent):
        await port.reply("rome-gala", "C-001", guests=0)
    # C-006 was invited by name to the preview (status "invited"): she accepts.
    assert (await port.reply(PARIS_PREVIEW, "C-006", guests=1)).status == "accepted"


async def test_the_deadline_is_the_end_of_rsvp_by_where_the_event_is(book: tuple[SqlEvents, ManualClock]) -> None:
    port, clock = book
    clock.set(datetime(2026, 12, 3, 22, 59, tzinfo=timezone.utc))  # 23:59 on 3 December in Paris
    assert (await port.reply(PARIS_PREVIEW, "C-012", guests=0)).status == "accepted"
    clock.set(datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc))  # midnight in Paris
    with pytest.raises(RsvpClosed):
        await port.reply(PARIS_PREVIEW, "C-012", guests=1)
    assert not (await port.standing(PARIS_PREVIEW, "C-012")).open  # type: ignore[union-attr]
    # Withdrawing stays possible until the event begins, and not after.
    assert (await port.decline(PARIS_PREVIEW, "C-012")).status == "declined"  # type: ignore[union-attr]
    clock.set(datetime(2026, 12, 10, 17, 30, tzinfo=timezone.utc))
    with pytest.raises(RsvpClosed):
        await port.decline(PARIS_PREVIEW, "C-001")
    assert [s.event.id for s in await port.upcoming_for("C-001")] == [TRUNK_SHOW]


async def test_a_full_event_refuses_or_waitlists(database_url: str, book: tuple[SqlEvents, ManualClock]) -> None:
    port, _ = book
    set_capacity(database_url, TRUNK_SHOW, 5)  # 3 people accepted in the seed
    assert (await port.reply(TRUNK_SHOW, "C-001", guests=1)).status == "accepted"  # 5 of 5
    with pytest.raises(EventFull) as full:
        await port.reply(TRUNK_SHOW, "C-002", guests=0)
    assert full.value.remaining == 0
    assert await port.standing(TRUNK_SHOW, "C-002") is not None
    assert (await port.standing(TRUNK_SHOW, "C-002")).reply is None  # type: ignore[union-attr]
    waiting = await port.reply(TRUNK_SHOW, "C-002", guests=1, waitlist_if_full=True)
    assert (waiting.status, waiting.guests) == ("waitlisted", 1)
    # An accepted client asking for more than fits keeps the place they had.
    set_capacity(database_url, TRUNK_SHOW, 6)
    assert (await port.reply(TRUNK_SHOW, "C-001", guests=0)).guests == 0  # frees one: 4 of 6
    assert (await port.reply(TRUNK_SHOW, "C-003", guests=1)).status == "accepted"  # 6 of 6
    with pytest.raises(EventFull):
        await port.reply(TRUNK_SHOW, "C-001", guests=1, waitlist_if_full=True)
    kept = await port.standing(TRUNK_SHOW, "C-001")
    assert kept is not None and kept.reply is not None and (kept.reply.status, kept.reply.guests) == ("accepted", 0)
    assert kept.has_room_for(0) and not kept.has_room_for(1)
    # The waitlisted client gets in when places free up and they ask again.
    await port.decline(TRUNK_SHOW, "C-013")  # 2 places freed: 4 of 6
    assert (await port.reply(TRUNK_SHOW, "C-002", guests=1)).status == "accepted"


async def test_no_overbooking_under_concurrency(database_url: str) -> None:
    """Twelve clients reply to the trunk show at once through four engines (as four
    server processes would), three places left: exactly three are accepted, the ones
    who asked for the waiting list are on it, the others are refused."""
    seed_database(database_url)
    set_capacity(database_url, TRUNK_SHOW, 6)  # 3 people accepted in the seed
    engines = [make_async_engine(database_url) for _ in range(4)]
    ports = [SqlEvents(engine, ManualClock(NOW)) for engine in engines]
    clients = ["C-001", "C-002", "C-003", "C-004", "C-005", "C-006", "C-008", "C-009", "C-010",
               "C-011", "C-012", "C-015"]

    async def attempt(index: int, client: str) -> str:
        try:
            made = await ports[index % len(ports)].reply(TRUNK_SHOW, client, guests=0,
                                                         waitlist_if_full=index % 2 == 0)
        except EventFull:
            return "full"
        return made.status

    try:
        outcomes = await asyncio.gather(*(attempt(i, c) for i, c in enumerate(clients)))
        assert outcomes.count("accepted") == 3
        assert outcomes.count("waitlisted") + outcomes.count("full") == 9
        assert all(o == "full" for i, o in enumerate(outcomes) if i % 2 == 1 and o != "accepted")
        async with engines[0].connect() as conn:
            rows = (await conn.execute(select(event_rsvps.c.guests).where(
                event_rsvps.c.event_id == TRUNK_SHOW, event_rsvps.c.status == "accepted"))).all()
        assert sum(1 + r.guests for r in rows) == 6
    finally:
        for engine in engines:
            await engine.dispose()


async def test_replies_are_exported_and_erased_with_the_client(sqlite_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seed_database(sqlite_url)
    monkeypatch.setenv("RASA_TRACKER_STORE_URL", f"sqlite:///{tmp_path / 'trackers.db'}")
    monkeypatch.setenv("SALON_PRIVACY_SALT", "test-salt")
    engine = make_async_engine(sqlite_url)
    try:
        await SqlEvents(engine, ManualClock(NOW)).reply(TRUNK_SHOW, "C-001", guests=1)
    finally:
        await engine.dispose()
    registry = default_registry(Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=sqlite_url,
                                         redis_url=None), clock=ManualClock(NOW))
    try:
        subject = await registry.resolve("C-001")
        exported = (await registry.export(subject))["stores"]["maison_event_rsvps"]
        assert {(r["event_id"], r["status"], r["guests"]) for r in exported} == {
            (PARIS_PREVIEW, "accepted", 1), (TRUNK_SHOW, "accepted", 1)}
        removed = await registry.erase(subject, actor="test")
        assert removed["maison_event_rsvps"] == 2
        assert (await registry.export(subject))["stores"]["maison_event_rsvps"] == []
    finally:
        await registry.close()


@pytest.mark.parametrize(("words", "bare", "guests"), [
    ("just me", True, 0), ("only me, no guest", True, 0), ("I'll be joining the preview alone", True, 0),
    ("with my husband", True, 1), ("me and my wife", True, 1), ("my daughter and I", True, 1),
    ("I'll bring one guest", True, 1), ("with a friend", True, 1), ("+1", True, 1), ("rsvp yes + 1", True, 1),
    ("2 guests", True, 2), ("with two friends", True, 2), ("we'll be three", True, 2),
    ("four of us will come", True, 3), ("RSVP for 2 to the trunk show", True, 1),
    ("juste moi", True, 0), ("sans invité", True, 0), ("avec mon mari", True, 1),
    ("nous serons deux", True, 1), ("nous viendrons à trois", True, 2),
    ("1", True, 1), ("no", True, 0), ("1", False, None), ("no", False, None),
    ("yes please", True, None), ("I'd like to RSVP to the Autumn collection preview", True, None),
    ("yes I will attend the preview on the 18th", True, None), ('/inform{"rsvp_guests": "1"}', True, None),
    ("je viendrai avec une autre personne", True, None),
])
def test_guests_read_from_the_clients_words(words: str, bare: bool, guests: int | None) -> None:
    assert parse_guests(words, bare=bare) == guests


async def test_the_event_a_client_names(book: tuple[SqlEvents, ManualClock]) -> None:
    port, _ = book
    standings = await port.upcoming_for("C-001")
    for words, expected in [
        ("the trunk show", TRUNK_SHOW), ("the jewellery evening", TRUNK_SHOW),
        ("la soirée Haute Joaillerie à Londres", TRUNK_SHOW), ("the event at Mount Street", TRUNK_SHOW),
        ("count me in for the Autumn collection preview", PARIS_PREVIEW), ("l'avant-première", PARIS_PREVIEW),
        ("the one in Paris", PARIS_PREVIEW), (f'/inform{{"rsvp_event": "{TRUNK_SHOW}"}}', TRUNK_SHOW),
        ("the preview in London", None), ("I'd like to RSVP", None), ("", None),
    ]:
        found = find_event(words, standings)
        assert (found.event.id if found else None) == expected, words


async def test_the_event_lines_in_french_and_italian(book: tuple[SqlEvents, ManualClock]) -> None:
    port, _ = book
    preview, show = await port.upcoming_for("C-001")
    # Both titles are feminine in French: "affiche complet" agrees with either.
    assert full_lead(preview.event, "fr") == (
        "Je suis désolé, « Avant-première de la collection d'automne » affiche complet pour le "
        "moment ; je peux néanmoins vous inscrire sur la liste d'attente.")
    reply, _ = confirm_question(show, 1, "fr", "Sophie")
    assert (reply.text, [b["title"] for b in reply.buttons]) == (
        "Je confirme donc votre venue à « Présentation Haute Joaillerie », le jeudi 21 janvier à "
        "18 h, Maison Solenne London Mount Street, pour vous et un invité ?",
        ["Oui, je confirme", "Modifier le nombre"])
    reply, _ = confirm_question(show, 1, "it", "Giulia")
    assert reply.text == (
        "Confermo quindi la Sua partecipazione a «Presentazione Haute Joaillerie», giovedì 21 "
        "gennaio alle 18:00, Maison Solenne London Mount Street, per Lei e un ospite?")
    assert [b["title"] for b in withdraw_question(preview, "fr").buttons] == ["Oui, annuler",
                                                                             "Garder ma place"]
    assert [b["title"] for b in withdraw_question(preview, "it").buttons] == ["Sì, annulli pure",
                                                                             "Mantengo il posto"]
    assert withdraw_question(show, "it").text == (
        "Desidera che comunichi la Sua assenza a «Presentazione Haute Joaillerie», giovedì 21 gennaio?")
    # A client without an advisor is promised no advisor of her own.
    alone = ClientRecord("C-900", "Mme", "Anne", "Morel", "fr", "Gold", "paris", "Europe/Paris")
    assert no_event_line(alone, "fr").text == (
        "Aucune invitation n'attend votre réponse pour le moment. L'un de nos conseillers se fera un "
        "plaisir de vous parler des prochaines soirées de la maison.")
    assert no_event_line(alone, "it").text == (
        "Al momento non ci sono eventi in attesa di una Sua risposta. Uno dei nostri consulenti Le "
        "parlerà volentieri delle prossime serate della maison.")
    assert closed_line(show.event, alone, "fr").text == (
        "Les réponses pour « Présentation Haute Joaillerie » étaient attendues jusqu'au mardi 12 "
        "janvier. L'un de nos conseillers verra volontiers ce qui est encore possible.")
    assert closed_line(show.event, alone, "it").text == (
        "Le risposte per «Presentazione Haute Joaillerie» erano attese entro martedì 12 gennaio. Uno "
        "dei nostri consulenti verificherà volentieri che cosa sia ancora possibile.")


async def test_evenings_asked_for_in_one_city_are_hers_there_or_none_of_hers_is(
        book: tuple[SqlEvents, ManualClock]) -> None:
    """"Is there an event in Milan?": the evenings she is invited to there; none there,
    that none of hers is (nothing of evenings she is not invited to), then the others."""
    from salon.conversation.rsvp import upcoming_events

    port, _ = book
    standings = await port.upcoming_for("C-001")
    claire = ClientRecord("C-001", "Mme", "Claire", "Laurent", "fr", "VIC", "paris", "Europe/Paris")
    london = upcoming_events(standings, claire, "en", "london", "London")
    assert london.text.startswith("You are invited to ") and "Paris" not in london.text, london.text
    assert len(london.buttons) == 1
    milan = upcoming_events(standings, claire, "it", "milan", "Milan")
    assert milan.text.startswith("Tra i Suoi inviti non c'è una serata a Milano. È invitata a "), milan.text
    assert len(milan.buttons) == len(upcoming_events(standings, claire, "it").buttons)
    assert upcoming_events(standings, claire, "fr", "milan", "Milan").text.startswith(
        "Parmi vos invitations, aucune soirée n'a lieu à Milan. Vous êtes invitée à ")
