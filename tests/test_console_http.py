"""The advisor console over HTTP (an aiohttp client with its own cookie jar, as a browser
keeps one), on the WhatsApp channel's blueprint against the Cloud API emulator
(tests/console_support.py): signing in and out, the session cookie and its table, CSRF,
revoked credentials, the security headers and the static files, who sees which
conversation, escaping, the live events, and the audit row every act leaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select
from yarl import URL

from salon.access.tokens import TokenBook
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import SystemClock
from salon.config import Settings
from salon.console.pages import STATIC_DIR, STATIC_FILES
from salon.console.sessions import COOKIE, ConsoleSessions, sessions_table
from tests.console_support import (
    CAMILLE,
    CAMILLE_CLIENT,
    CLAIRE,
    CONSOLE_PATH,
    HELENE,
    MANAGER,
    SOPHIE,
    TOKENS,
    Console,
    running_console,
)
from tests.seeding import seed_maison
from tests.whatsapp_support import PNID

ANSWERS = {"Bonjour, je voudrais parler à Sophie": "Bien sûr. Sophie vous répondra ici."}
METRICS: dict[str, Any] = {"name": "metrics", "token": "metrics-credential-0c1d2e3f", "scopes": ["metrics"]}
ANTOINE_SAYS = "Bonjour, ma montre retarde de dix minutes par jour"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Answer:
    status: int
    html: str
    headers: Any

    @property
    def location(self) -> str:
        return str(self.headers.get("Location") or "")


class Desk:
    """One advisor's browser: a cookie jar and the console's forms."""

    def __init__(self, console: Console, http: aiohttp.ClientSession) -> None:
        self.console = console
        self.http = http

    async def get(self, path: str, **params: str) -> Answer:
        async with self.http.get(f"{self.console.url}{path}", params=params or None,
                                 allow_redirects=False) as r:
            return Answer(r.status, await r.text(), r.headers)

    async def post(self, path: str, data: dict[str, str], *, csrf: bool | str = True) -> Answer:
        form = dict(data)
        if csrf is True:
            form["csrf"] = await self.csrf()
        elif isinstance(csrf, str):
            form["csrf"] = csrf
        async with self.http.post(f"{self.console.url}{path}", data=form, allow_redirects=False) as r:
            return Answer(r.status, await r.text(), r.headers)

    async def csrf(self) -> str:
        page = await self.get("/inbox")
        assert page.status == 200, page.status
        found = CSRF.search(page.html)
        assert found, "no CSRF field on the inbox"
        return found.group(1)

    async def sign_in(self, token: str) -> Answer:
        async with self.http.post(f"{self.console.url}/signin", data={"token": token},
                                  allow_redirects=False) as r:
            return Answer(r.status, await r.text(), r.headers)

    @property
    def cookie(self) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == COOKIE:
                return morsel.value
        return None


@asynccontextmanager
async def desk(console: Console, token: str | None = None) -> AsyncIterator[Desk]:
    # A browser keeps cookies for an IP host; aiohttp's jar does only when told to.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        advisor = Desk(console, http)
        if token is not None:
            signed = await advisor.sign_in(token)
            assert signed.status == 303, (signed.status, signed.html)
        yield advisor


async def _scene(c: Console) -> None:
    """Claire (Sophie's) waits for her advisor; Hélène (Sophie's) and Antoine (Camille's)
    wrote earlier in the morning."""
    await c.advance(timedelta(hours=-3))
    await c.client_writes(HELENE, "Bonjour, le parfum Eau de Solenne existe-t-il en 50 ml ?")
    await c.advance(timedelta(hours=1))
    await c.client_writes(CAMILLE_CLIENT, ANTOINE_SAYS)
    await c.advance(timedelta(hours=2))
    await c.client_writes(CLAIRE, "Bonjour, je voudrais parler à Sophie")
    await c.open_handoff(CLAIRE)


@pytest.fixture()
async def console(settings: Settings) -> AsyncIterator[Console]:
    async with running_console(settings, answers=ANSWERS) as started:
        await _scene(started)
        yield started


def _policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def _security_headers_hold(headers: Any) -> None:
    policy = _policy(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
    for directive, sources in policy.items():
        for source in sources:
            assert source in ("'self'", "'none'", "data:"), (directive, source)  # no other origin
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def _set_cookie(answer: Answer) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in answer.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar


# --------------------------------------------------------------------------- signing in


async def test_signing_in_gives_a_strict_cookie_whose_key_the_database_never_holds(
        database_url: str, tmp_path: Path) -> None:
    seed_maison(database_url)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)
    async with running_console(settings, tokens=(*TOKENS, METRICS)) as c, desk(c) as sophie:
        home = await sophie.get("")
        assert (home.status, home.location) == (303, f"{CONSOLE_PATH}/inbox")
        inbox = await sophie.get("/inbox")
        assert (inbox.status, inbox.location) == (303, f"{CONSOLE_PATH}/signin")

        page = await sophie.get("/signin")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        _security_headers_hold(page.headers)
        assert '<label for="token">' in page.html and 'type="password"' in page.html

        for wrong in ("not-a-credential-of-anyone", METRICS["token"], ""):
            refused = await sophie.sign_in(wrong)
            assert refused.status == 401, wrong
            assert "not recognised" in refused.html
            assert not refused.headers.getall("Set-Cookie", []) and sophie.cookie is None
            _security_headers_hold(refused.headers)

        signed = await sophie.sign_in(f"  {SOPHIE} ")
        assert (signed.status, signed.location) == (303, f"{CONSOLE_PATH}/inbox")
        morsel = _set_cookie(signed)[COOKIE]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert morsel["path"] == CONSOLE_PATH
        assert morsel["max-age"] == str(8 * 3600)
        assert not morsel["secure"]  # plain HTTP here; set behind HTTPS
        key = morsel.value
        assert len(key) >= 40 and SOPHIE not in key
        assert (await sophie.get("/inbox")).status == 200

        sessions = ConsoleSessions(database_url)
        try:
            async with sessions.engine.connect() as conn:
                rows = (await conn.execute(select(sessions_table))).all()
        finally:
            await sessions.close()
        [row] = rows
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.principal == "sophie" and row.advisor_id == "sophie-marchand"
        assert json.loads(row.scopes) == ["advisor"]
        stored = repr(tuple(row))
        assert key not in stored and SOPHIE not in stored
        assert (row.expires_at - row.created_at) == timedelta(hours=8)

        # Signing out needs the form's CSRF key; then the old cookie opens nothing.
        refused = await sophie.post("/signout", {}, csrf=False)
        assert refused.status == 403 and (await sophie.get("/inbox")).status == 200
        out = await sophie.post("/signout", {})
        assert (out.status, out.location) == (303, f"{CONSOLE_PATH}/signin")
        gone = _set_cookie(out)[COOKIE]
        assert gone.value == "" and gone["max-age"] == "0" and gone["path"] == CONSOLE_PATH
        assert sophie.cookie in (None, "")
        async with aiohttp.ClientSession(cookies={COOKIE: key}) as replay:
            async with replay.get(f"{c.url}/inbox", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, f"{CONSOLE_PATH}/signin")
            async with replay.get(f"{c.url}/events", allow_redirects=False) as r:
                assert r.status == 401
        actions = [(a.action, a.actor, a.detail.get("via")) for a in await c.audit()]
        assert actions == [("sign_out", "sophie", "console"), ("sign_in", "sophie", "console")]


async def test_a_credential_removed_from_the_tokens_ends_its_sessions(settings: Settings) -> None:
    async with running_console(settings) as c, desk(c, SOPHIE) as sophie, desk(c, CAMILLE) as camille:
        keys = {"sophie": sophie.cookie, "camille": camille.cookie}
        assert all(keys.values())

    # The server starts again with Sophie's credential gone from SALON_API_TOKENS.
    remaining = tuple(t for t in TOKENS if t["name"] != "sophie")
    async with running_console(settings, tokens=remaining) as c:
        for name, key in keys.items():
            async with aiohttp.ClientSession(cookies={COOKIE: str(key)}) as browser:
                async with browser.get(f"{c.url}/inbox", allow_redirects=False) as r:
                    if name == "sophie":
                        assert (r.status, r.headers["Location"]) == (303, f"{CONSOLE_PATH}/signin")
                    else:
                        assert r.status == 200
        async with desk(c) as again:
            assert (await again.sign_in(SOPHIE)).status == 401

    # The same rule, read straight from the table: a session is worth what its
    # principal's credential is worth now, and nothing past its expiry.
    sessions = ConsoleSessions(settings.effective_database_url)
    try:
        now = SystemClock().now()
        before, after = TokenBook.from_config(TOKENS), TokenBook.from_config(remaining)
        found = await sessions.find(keys["camille"], now=now, tokens=before)
        assert found is not None and found.principal.advisor_id == "camille-roux"
        assert await sessions.find(keys["sophie"], now=now, tokens=before) is not None
        assert await sessions.find(keys["sophie"], now=now, tokens=after) is None
        assert await sessions.find(keys["camille"], now=now + timedelta(hours=9), tokens=before) is None
        assert await sessions.find("x" * 101, now=now, tokens=before) is None
        assert found.csrf not in repr(found)
    finally:
        await sessions.close()


# --------------------------------------------------------------------------- headers, files


async def test_every_page_has_the_security_headers_and_no_outside_origin(console: Console) -> None:
    async with desk(console, SOPHIE) as sophie:
        pages = [await sophie.get("/signin"), await sophie.get("/inbox"), await sophie.get(f"/c/{CLAIRE}"),
                 await sophie.get(f"/c/{CAMILLE_CLIENT}")]
        assert [p.status for p in pages] == [200, 200, 200, 403]
        for page in pages:
            _security_headers_hold(page.headers)
            assert page.headers["Referrer-Policy"] == "same-origin"
            referenced = re.findall(r'(?:src|href|action)="([^"]*)"', page.html)
            assert referenced
            for ref in referenced:
                assert ref.startswith((f"{CONSOLE_PATH}/", "#")), ref
            assert "<script>" not in page.html and not re.search(r"\son[a-z]+\s*=", page.html)
            assert "style=" not in page.html  # CSP: no inline style either
        refused = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Bonjour"}, csrf=False)
        _security_headers_hold(refused.headers)


async def test_static_files_come_only_from_the_fixed_list(console: Console) -> None:
    async with aiohttp.ClientSession() as http:
        for name, kind in STATIC_FILES.items():
            async with http.get(f"{console.url}/static/{name}") as r:
                assert r.status == 200, name
                assert r.headers["Content-Type"] == kind
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert await r.read() == (STATIC_DIR / name).read_bytes()
        for name in ("pages.py", "sessions.py", "signin.html", "CONSOLE.CSS", "console.css.map",
                     "..%2Fpages.py", "%2e%2e%2fsessions.py", "..%2Ftemplates%2Fbase.html", ".", "..%2F"):
            async with http.get(URL(f"{console.url}/static/{name}", encoded=True)) as r:
                assert r.status == 404, name
                body = await r.text()
                assert "import" not in body and "<html" not in body, name
    for path in STATIC_DIR.iterdir():  # nothing in them reaches another origin
        text = path.read_text(encoding="utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert path.name in STATIC_FILES


# --------------------------------------------------------------------------- who sees what


async def test_an_advisor_gets_a_refusal_naming_nothing_of_another_advisors_client(console: Console) -> None:
    async with desk(console, SOPHIE) as sophie, desk(console, CAMILLE) as camille:
        inbox = (await sophie.get("/inbox")).html
        assert "Claire Laurent" in inbox and "Hélène Vasseur" in inbox
        assert "Antoine" not in inbox and CAMILLE_CLIENT not in inbox
        camilles = (await camille.get("/inbox")).html
        assert "Antoine Delacroix" in camilles and "Claire" not in camilles

        before = await console.outbox(CAMILLE_CLIENT)
        for path in (f"/c/{CAMILLE_CLIENT}", "/c/33699999999"):
            refused = await sophie.get(path)
            assert refused.status == 403, path
            assert "not one of yours" in refused.html
            for detail in ("Antoine", "Delacroix", CAMILLE_CLIENT, "C-002", "Platinum", "montre",
                           "camille", "33699999999"):
                assert detail not in refused.html, detail
        for act, form in (("reply", {"text": "Bonjour Monsieur"}), ("take", {}), ("resume", {}),
                          ("template", {"template": "advisor_followup"})):
            refused = await sophie.post(f"/c/{CAMILLE_CLIENT}/{act}", form)
            assert refused.status == 403, act
            assert "Antoine" not in refused.html
        async with sophie.http.get(f"{console.url}/events", params={"c": CAMILLE_CLIENT}) as r:
            assert r.status == 403
        assert await console.outbox(CAMILLE_CLIENT) == before
        assert (await camille.get(f"/c/{CAMILLE_CLIENT}")).status == 200
        assert (await camille.get(f"/c/{CLAIRE}")).status == 403
        assert not [a for a in await console.audit() if a.conversation_id == CAMILLE_CLIENT
                    and a.actor == "sophie"]


async def test_the_manager_sees_everyone_and_reassigns_an_advisor_cannot(console: Console) -> None:
    async with desk(console, MANAGER) as manager, desk(console, SOPHIE) as sophie, \
            desk(console, CAMILLE) as camille:
        inbox = (await manager.get("/inbox")).html
        for name in ("Claire Laurent", "Hélène Vasseur", "Antoine Delacroix"):
            assert name in inbox
        assert "direction · manager" in inbox
        assert (await manager.get("/c/not-a-conversation")).status == 404

        page = await manager.get(f"/c/{CLAIRE}")
        assert page.status == 200 and 'name="advisor_id"' in page.html and "/reassign" in page.html
        assert "Camille Roux · Paris" in page.html
        mine = await sophie.get(f"/c/{CLAIRE}")
        assert mine.status == 200 and 'name="advisor_id"' not in mine.html and "/reassign" not in mine.html

        refused = await sophie.post(f"/c/{CLAIRE}/reassign", {"advisor_id": "sophie-marchand"})
        assert refused.status == 403 and "Only a manager" in refused.html
        unknown = await manager.post(f"/c/{CLAIRE}/reassign", {"advisor_id": "nobody-here"})
        assert unknown.status == 303 and "done=error" in unknown.location

        book = HandoffBook(console.settings.effective_database_url)
        try:
            assert (await book.latest_for(CLAIRE)).advisor_id == "sophie-marchand"  # type: ignore[union-attr]
            moved = await manager.post(f"/c/{CLAIRE}/reassign", {"advisor_id": "camille-roux"})
            assert moved.status == 303 and moved.location.endswith(f"/c/{CLAIRE}?done=reassigned")
            assert (await book.latest_for(CLAIRE)).advisor_id == "camille-roux"  # type: ignore[union-attr]
        finally:
            await book.close()
        assert "Reassigned." in (await manager.get(f"/c/{CLAIRE}", done="reassigned")).html
        assert "Claire Laurent" in (await camille.get("/inbox")).html
        assert "Claire Laurent" not in (await sophie.get("/inbox")).html
        [reassigned] = [a for a in await console.audit() if a.action == "reassign"]
        assert (reassigned.actor, reassigned.conversation_id, reassigned.client_id) == ("direction", CLAIRE, "C-001")
        assert reassigned.detail["from_advisor"] == "sophie-marchand"
        assert reassigned.detail["to_advisor"] == "camille-roux"


# --------------------------------------------------------------------------- forms


async def test_a_form_without_its_csrf_key_sends_nothing(console: Console) -> None:
    async with desk(console, SOPHIE) as sophie, desk(console, CAMILLE) as camille:
        theirs = await camille.csrf()
        for csrf in (False, "", "forged-key-0000000000", theirs):
            refused = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Bonjour Madame Laurent", "confirm": "1"},
                                        csrf=csrf)
            assert refused.status == 403, csrf
            assert "expired" in refused.html
        assert (await sophie.post(f"/c/{CLAIRE}/take", {}, csrf=False)).status == 403
        texts = [m["body"] for m in await console.outbox(CLAIRE)]
        assert "Bonjour Madame Laurent" not in texts
        assert not [a for a in await console.audit() if a.action in ("reply", "take_handoff")]

        # With it, the same reply leaves: first the voice check, then as it is.
        checked = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "SALUT CLAIRE!!!"})
        assert checked.status == 200 and "Send anyway" in checked.html and 'class="voice"' in checked.html
        assert "SALUT CLAIRE!!!" in checked.html  # the draft is kept
        assert "SALUT CLAIRE!!!" not in [m["body"] for m in await console.outbox(CLAIRE)]
        sent = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Bonjour Madame Laurent"})
        assert sent.status == 303 and sent.location.endswith(f"/c/{CLAIRE}?done=free_form")
        assert [m["body"] for m in await console.outbox(CLAIRE)][-1] == "Bonjour Madame Laurent"


async def test_what_a_client_writes_is_shown_as_text(console: Console) -> None:
    attack = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    await console.client_writes(CLAIRE, attack)
    async with desk(console, SOPHIE) as sophie:
        page = (await sophie.get(f"/c/{CLAIRE}")).html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
        assert "<script>alert" not in page and "<img src=x" not in page
        search = (await sophie.get("/inbox", q='"><script>alert(3)</script>')).html
        assert "<script>alert(3)" not in search and "&lt;script&gt;alert(3)" in search
        notice = (await sophie.get(f"/c/{CLAIRE}", done="error", why="<b>bold</b>")).html
        assert "<b>bold</b>" not in notice and "&lt;b&gt;bold&lt;/b&gt;" in notice


# --------------------------------------------------------------------------- live


async def _next_event(stream: aiohttp.ClientResponse, timeout: float = 8.0) -> str:
    """The next named event of a Server-Sent Events stream (comments skipped)."""
    async def read() -> str:
        while True:
            block = (await stream.content.readuntil(b"\n\n")).decode()
            if block.startswith("event:"):
                return block.split("\n", 1)[0].split(":", 1)[1].strip()

    return await asyncio.wait_for(read(), timeout)


async def test_the_events_stream_tells_a_page_that_its_conversation_changed(console: Console) -> None:
    async with desk(console, SOPHIE) as sophie:
        async with sophie.http.get(f"{console.url}/events", params={"c": CLAIRE}) as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert stream.headers["Cache-Control"] == "no-store"
            first = (await stream.content.readuntil(b"\n\n")).decode()
            assert first.startswith("retry:")
            await console.client_writes(CLAIRE, "Je serai à la boutique vendredi")
            assert await _next_event(stream) == "change"
            await console.advance(timedelta(hours=25))  # her window closes: the composer changes
            assert await _next_event(stream) == "change"
        async with aiohttp.ClientSession() as stranger:
            async with stranger.get(f"{console.url}/events") as r:
                assert r.status == 401

        # A change between the page and its stream (the page says what it was made from)
        # is told at once, before the stream's first look.
        page = (await sophie.get(f"/c/{CLAIRE}")).html
        live = re.search(r'data-live="([^"]+)"', page)
        assert live and "since=" in live.group(1)
        await console.client_writes(CLAIRE, "Et pour la ceinture assortie ?")
        url = live.group(1).replace("&amp;", "&")
        async with sophie.http.get(f"{console.channel.url}{url}") as stream:
            await stream.content.readuntil(b"\n\n")
            assert await _next_event(stream, timeout=1.0) == "change"
        page = (await sophie.get(f"/c/{CLAIRE}")).html
        live = re.search(r'data-live="([^"]+)"', page)
        assert live
        async with sophie.http.get(f"{console.channel.url}{live.group(1).replace('&amp;', '&')}") as stream:
            await stream.content.readuntil(b"\n\n")
            with pytest.raises(asyncio.TimeoutError):  # nothing new: quiet
                await _next_event(stream, timeout=3.0)


async def test_the_inbox_hears_of_a_reassignment_nobody_had_taken(console: Console) -> None:
    """A manager moves a handoff nobody has taken yet: no count changes, but who has it
    does, and every open inbox must hear of it."""
    await console.open_handoff(CLAIRE)
    async with desk(console, SOPHIE) as sophie, desk(console, MANAGER) as manager:
        async with sophie.http.get(f"{console.url}/events") as stream:
            await stream.content.readuntil(b"\n\n")
            moved = await manager.post(f"/c/{CLAIRE}/reassign", {"advisor_id": "camille-roux"})
            assert moved.location.endswith("done=reassigned")
            assert await _next_event(stream) == "change"


async def test_the_events_stream_tells_of_a_status_sharing_a_timestamp(settings: Settings) -> None:
    """Meta's statuses carry whole seconds: delivered and read may share one (here the
    clock stands still), and the page must still hear of the read.
    """
    async with running_console(settings, status_delays=(0.05, 0.1, 4.0), frozen=True) as c, \
            desk(c, SOPHIE) as sophie:
        await c.client_writes(CLAIRE, "Bonjour, je voudrais parler à Sophie")
        await c.open_handoff(CLAIRE)
        sent = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Bonjour Madame Laurent", "confirm": "1"})
        assert sent.location.endswith("done=free_form")
        for _ in range(100):
            [reply] = [m for m in await c.outbox(CLAIRE, idle=False) if m["body"] == "Bonjour Madame Laurent"]
            if reply["status"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert reply["status"] == "delivered"
        async with sophie.http.get(f"{c.url}/events", params={"c": CLAIRE}) as stream:
            await stream.content.readuntil(b"\n\n")
            assert await _next_event(stream) == "change"
        [reply] = [m for m in await c.outbox(CLAIRE) if m["body"] == "Bonjour Madame Laurent"]
        assert reply["status"] == "read"
        assert [s["at"] for s in reply["statuses"]] == [reply["sent_at"]] * 3
        assert "✓✓</span> read" in (await sophie.get(f"/c/{CLAIRE}")).html


# --------------------------------------------------------------------------- audit


async def test_every_act_leaves_an_audit_row(console: Console) -> None:
    repairs = RepairBook(console.settings.effective_database_url)
    try:
        await repairs.initialize()
        repair = await repairs.open(conversation_id=CLAIRE, item="Céleste saddle bag", issue="A strap came loose",
                                    photos=[], now=console.now(), client_id="C-001",
                                    advisor_id="sophie-marchand", boutique_id="paris")
    finally:
        await repairs.close()
    async with desk(console, SOPHIE) as sophie, desk(console, MANAGER) as manager:
        assert (await sophie.get(f"/c/{CLAIRE}")).status == 200
        assert (await sophie.post(f"/c/{CLAIRE}/take", {})).location.endswith("done=taken")
        assert (await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Bonjour Madame Laurent, je suis là.",
                                                           "confirm": "1"})).location.endswith("done=free_form")
        updated = await sophie.post(f"/repairs/{repair.id}", {"status": "in_progress", "back": CLAIRE})
        assert updated.location.endswith(f"/c/{CLAIRE}?done=updated")
        due = (console.now() + timedelta(days=2)).astimezone(ZoneInfo("Europe/Paris"))
        followed = await sophie.post(f"/c/{CLAIRE}/follow-up", {
            "at": due.replace(tzinfo=None).isoformat(timespec="minutes"), "text": "Votre sac est prêt."})
        assert followed.location.endswith("done=scheduled")
        await console.advance(timedelta(hours=25))
        page = (await sophie.get(f"/c/{CLAIRE}")).html
        assert 'data-mode="templates"' in page and 'value="advisor_followup"' in page
        sent = await sophie.post(f"/c/{CLAIRE}/template", {"template": "advisor_followup"})
        assert sent.location.endswith("done=template")
        parked = await sophie.post(f"/c/{CLAIRE}/reply", {"text": "Votre sac est prêt.", "confirm": "1"})
        assert parked.location.endswith("done=parked")
        assert (await manager.post(f"/c/{CLAIRE}/reassign", {"advisor_id": "camille-roux"})).status == 303
        assert (await manager.post(f"/c/{CLAIRE}/resume", {})).location.endswith("done=back")
        assert (await sophie.post("/signout", {})).status == 303

    box = await console.outbox(CLAIRE)
    assert [(m["type"], m["template"]) for m in box][-3:] == [
        ("text", None), ("template", "advisor_followup"), ("template", "advisor_update_nudge")]
    trail = list(reversed(await console.audit()))
    acts = [(a.action, a.actor, a.conversation_id, a.detail.get("via"), a.detail.get("sent")) for a in trail]
    assert acts == [
        ("sign_in", "sophie", None, "console", None),
        ("sign_in", "direction", None, "console", None),
        ("read_conversation", "sophie", CLAIRE, "console", None),
        ("take_handoff", "sophie", CLAIRE, "console", None),
        ("reply", "sophie", CLAIRE, "console", "free_form"),
        ("update_repair", "sophie", CLAIRE, "console", "free_form"),  # she was told, in her window
        ("schedule_follow_up", "sophie", CLAIRE, "console", None),
        ("read_conversation", "sophie", CLAIRE, "console", None),
        ("reply", "sophie", CLAIRE, "console", "template"),
        ("reply", "sophie", CLAIRE, "console", "parked"),
        ("reassign", "direction", CLAIRE, "console", None),
        ("hand_back", "direction", CLAIRE, "console", None),
        ("sign_out", "sophie", None, "console", None),
    ]
    by_action = {a.action: a for a in trail}
    assert by_action["update_repair"].detail["status"] == "in_progress"
    assert by_action["update_repair"].detail["repair_id"] == repair.id
    assert all(a.client_id == "C-001" for a in trail if a.conversation_id)
    assert PNID not in repr(trail)
    for text in ("Bonjour Madame Laurent", "Votre sac est prêt"):  # no words in the trail
        assert text not in repr(trail)
