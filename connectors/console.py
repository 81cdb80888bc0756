"""The advisor console's routes, on the WhatsApp channel's blueprint (so under
``/webhooks/whatsapp/console/``), a thin adapter over :mod:`salon.console` and the advisor
desk (:mod:`salon.advisors.desk`): every act goes through the same code, and the same
checks, as the advisor API.

Why on the Rasa server rather than a process of its own: the conversation, its pause and
its resume live in Rasa's tracker store, changed under Rasa's lock store like any turn;
the advisor API already works there; and the console's own state (sessions, audit) is in
``DATABASE_URL``, so any replica serves any advisor and live updates come from the shared
stores, not from one process's memory.

Pages (HTML, autoescaped): ``/console/signin``, ``/console/inbox``, ``/console/c/<id>``,
and for managers ``/console/report`` (the latest report of ``SALON_REPORT_DIR``, its files
under ``/console/report/files/``); acts (POST forms with the session's CSRF key): sign out,
reply, send a template, take, hand back, reassign, update a repair request, make the
report again; ``/console/events`` is a Server-Sent Events stream telling the page that
something it shows has changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.access.tokens import AccessDenied, TokenBook
from salon.advisors.audit import AdvisorAudit
from salon.advisors.desk import AdvisorDesk, DeskAnswer
from salon.advisors.handoff import HandoffBook, handoffs_table
from salon.advisors.repairs import STATUSES, RepairBook
from salon.clock import Clock, SystemClock
from salon.consent.book import ConsentBook
from salon.console import inbox as inbox_view
from salon.console.client_file import read_client_file
from salon.console.composer import (
    ComposerMode,
    client_template_params,
    template_options,
    voice_check,
)
from salon.console.pages import countdown, render, static_file, waited
from salon.console.report import (
    DEFAULT_PERIOD,
    PERIODS,
    ReportMaker,
    latest_report,
    report_dir,
    report_file,
)
from salon.console.sessions import COOKIE, ConsoleSession, ConsoleSessions
from salon.console.thread import read_thread
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.integrations.crm import ClientRecord
from salon.outbound.pacing import QuietHours
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import inbox_table
from salon.window.state import SessionStore

logger = logging.getLogger(__name__)

__all__ = ["ConsoleContext", "add_console_routes"]

LIVE_SECONDS: Final = 300.0
"""How long one events stream lasts; the browser opens the next one by itself."""
POLL_SECONDS: Final = 2.0
DRIFT_SECONDS: Final = 600
"""A page is told to refresh when the business clock moves this far from the wall clock."""
FILTER_LABELS: Final = (("all", "All"), ("mine", "Mine"), ("waiting", "Waiting"),
                        ("closing", "Closing within 2 h"), ("closed", "Closed"))
NOTICES: Final = {
    "free_form": ("Sent.", "info"),
    "template": ("The template was sent.", "info"),
    "parked": ("Her window was closed when you sent: your message waits behind one approved nudge "
               "and reaches her as soon as she taps it.", "warn"),
    "refused": ("Not sent: the send-time check refused it ({why}).", "error"),
    "failed": ("Not sent: WhatsApp refused it ({why}).", "error"),
    "taken": ("The conversation is yours: the assistant stays quiet until you hand it back.", "info"),
    "back": ("Handed back: the assistant answers her again.", "info"),
    "reassigned": ("Reassigned.", "info"),
    "updated": ("The repair request is updated.", "info"),
    "scheduled": ("The follow-up is scheduled; the guard decides again when it is due.", "info"),
    "error": ("That did not work: {why}.", "error"),
    "generated": ("The report is made again, from the database as it is now.", "info"),
    "report_failed": ("The report could not be made: {why}.", "error"),
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class ConsoleContext:
    """What the console works with, built once the channel has started."""

    desk: AdvisorDesk
    tokens: TokenBook
    sessions: ConsoleSessions
    engine: AsyncEngine
    windows: SessionStore
    handoffs: HandoffBook
    repairs: RepairBook
    consents: ConsentBook
    registry: TemplateRegistry
    audit: AdvisorAudit
    clock: Clock
    phone_number_id: str
    advisors: tuple[tuple[str, str], ...]
    hours: float
    quiet: QuietHours | None = None
    """The outbound worker's quiet hours, shown beside the follow-up form."""
    wall: Clock = field(default_factory=SystemClock)
    """The sessions' clock: real elapsed time, as the browser counts the cookie's age
    (the business clock, which a demo or a test moves, governs the window)."""
    reports: ReportMaker = field(default_factory=lambda: ReportMaker(report_dir()))
    """Makes the managers' report into ``SALON_REPORT_DIR`` (default ``var/report``)."""


def _base(request: Request) -> str:
    path = request.path
    return path[: path.index("/console") + len("/console")]


def _page(html: str, status: int = 200) -> HTTPResponse:
    return response.html(html, status=status, headers=SECURITY_HEADERS)


def _redirect(to: str) -> HTTPResponse:
    return response.redirect(to, status=303, headers={"Cache-Control": "no-store"})


def _set_cookie(resp: HTTPResponse, request: Request, key: str, hours: float) -> None:
    resp.cookies[COOKIE] = key
    cookie = resp.cookies[COOKIE]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = _base(request)
    cookie["max-age"] = int(hours * 3600)
    if request.scheme == "https":
        cookie["secure"] = True


def _notice(request: Request) -> tuple[str | None, str | None]:
    done = request.args.get("done")
    if not done or done not in NOTICES:
        return None, None
    text, kind = NOTICES[done]
    why = (request.args.get("why") or "")[:120]
    return text.format(why=why or "no reason given"), kind


def _conversation_ref(conversation_id: str, record: ClientRecord | None, pnid: str) -> ClientRef:
    from salon.whatsapp.addressing import is_bsuid

    wa_id = (record.wa_id if record else None) or (None if is_bsuid(conversation_id) else conversation_id)
    user_id = (record.user_id if record else None) or (conversation_id if is_bsuid(conversation_id) else None)
    return ClientRef(pnid, user_id=user_id, wa_id=wa_id)


def add_console_routes(bp: Blueprint, limit: Callable[[Any], Any],
                       context: Callable[[], ConsoleContext | None]) -> None:
    """Mount the console on the channel's blueprint (each route answers 503 until the
    channel and the desk are up).
    """
    pages = ConsolePages(context)
    routes: tuple[tuple[str, str, Any], ...] = (
        ("/console", "GET", pages.home),
        ("/console/static/<name>", "GET", pages.static),
        ("/console/signin", "GET", pages.signin_page),
        ("/console/signin", "POST", pages.signin),
        ("/console/signout", "POST", pages.signout),
        ("/console/inbox", "GET", pages.inbox),
        ("/console/c/<conversation_id>", "GET", pages.conversation),
        ("/console/c/<conversation_id>/reply", "POST", pages.reply),
        ("/console/c/<conversation_id>/template", "POST", pages.template),
        ("/console/c/<conversation_id>/take", "POST", pages.take),
        ("/console/c/<conversation_id>/resume", "POST", pages.resume),
        ("/console/c/<conversation_id>/reassign", "POST", pages.reassign),
        ("/console/c/<conversation_id>/follow-up", "POST", pages.follow_up),
        ("/console/repairs/<request_id>", "POST", pages.repair),
        ("/console/events", "GET", pages.events),
        ("/console/report", "GET", pages.report),
        ("/console/report", "POST", pages.make_report),
        ("/console/report/files/<name>", "GET", pages.report_file),
    )
    for uri, method, handler in routes:
        bp.add_route(limit(handler), uri, methods=[method], name=f"console_{handler.__name__}")


def _starting() -> HTTPResponse:
    return response.text("the console is starting", status=503, headers={"Retry-After": "2"})


class ConsolePages:
    """The console's handlers (see the module docstring)."""

    def __init__(self, context: Callable[[], ConsoleContext | None]) -> None:
        self.context = context

    # ------------------------------------------------------------------ sessions
    async def _signed_in(self, request: Request, ctx: ConsoleContext) -> ConsoleSession | None:
        return await ctx.sessions.find(request.cookies.get(COOKIE), now=ctx.wall.now(), tokens=ctx.tokens)

    async def _csrf_checked(self, request: Request, ctx: ConsoleContext) -> ConsoleSession | HTTPResponse:
        session = await self._signed_in(request, ctx)
        if session is None:
            return _redirect(f"{_base(request)}/signin")
        if not session.csrf_ok(request.form.get("csrf")):
            logger.warning("console: a form without its CSRF key was refused (%s)", session.principal.name)
            return response.text("this form has expired; reload the page", status=403, headers=SECURITY_HEADERS)
        return session

    async def _entered(self, request: Request, *, form: bool = False,
                       ) -> tuple[ConsoleContext, ConsoleSession] | HTTPResponse:
        """The console and the signed-in advisor (a form's CSRF key checked too), or the
        answer instead: starting, or the way to the sign-in page.
        """
        ctx = self.context()
        if ctx is None:
            return _starting()
        if form:
            checked = await self._csrf_checked(request, ctx)
            return checked if isinstance(checked, HTTPResponse) else (ctx, checked)
        session = await self._signed_in(request, ctx)
        if session is None:
            return _redirect(f"{_base(request)}/signin")
        return ctx, session

    async def home(self, request: Request) -> HTTPResponse:
        return _redirect(f"{_base(request)}/inbox")

    async def static(self, request: Request, name: str) -> HTTPResponse:
        found = static_file(name)
        if found is None:
            return response.text("not found", status=404)
        body, kind = found
        return response.raw(body, content_type=kind, headers={"Cache-Control": "max-age=300",
                                                               "X-Content-Type-Options": "nosniff"})

    async def signin_page(self, request: Request) -> HTTPResponse:
        return _page(render("signin.html", base=_base(request), session=None))

    async def signin(self, request: Request) -> HTTPResponse:
        ctx = self.context()
        if ctx is None:
            return _starting()
        token = (request.form.get("token") or "").strip()
        try:
            principal = ctx.tokens.check(f"Bearer {token}", "advisor")
        except AccessDenied:
            logger.warning("console: a sign-in was refused")
            return _page(render("signin.html", base=_base(request), session=None,
                                error="That credential is not recognised for the console."), status=401)
        key, _ = await ctx.sessions.open(principal, now=ctx.wall.now(), hours=ctx.hours)
        await ctx.audit.record("sign_in", actor=principal.name, advisor_id=principal.advisor_id,
                               detail={"via": "console"})
        resp = _redirect(f"{_base(request)}/inbox")
        _set_cookie(resp, request, key, ctx.hours)
        return resp

    async def signout(self, request: Request) -> HTTPResponse:
        entered = await self._entered(request, form=True)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, checked = entered
        await ctx.sessions.end(request.cookies.get(COOKIE))
        await ctx.audit.record("sign_out", actor=checked.principal.name, advisor_id=checked.principal.advisor_id,
                               detail={"via": "console"})
        resp = _redirect(f"{_base(request)}/signin")
        _set_cookie(resp, request, "", 0)  # the browser forgets it (same name and path)
        return resp

    # ------------------------------------------------------------------ pages
    async def inbox(self, request: Request) -> HTTPResponse:
        entered = await self._entered(request)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, session = entered
        now = ctx.clock.now()
        view = request.args.get("view") or "all"
        if view not in inbox_view.FILTERS:
            view = "all"
        query = (request.args.get("q") or "")[:100]
        rows = await inbox_view.load_inbox(ctx.engine, handoffs=ctx.handoffs, sessions=ctx.windows,
                                           principal=session.principal, phone_number_id=ctx.phone_number_id,
                                           now=now)
        arranged = inbox_view.arrange(rows, now, principal=session.principal, view=view, query=query)
        live = await _fingerprint(ctx, None, None)
        notice, kind = _notice(request)
        return _page(render("inbox.html", base=_base(request), session=session, now=now, live=live[:16],
                            rows=arranged, view=view,
                            query=query, filters=FILTER_LABELS, notice=notice, notice_kind=kind,
                            countdown=lambda at: countdown(at, now), waited=lambda at: waited(at, now)))

    async def conversation(self, request: Request, conversation_id: str) -> HTTPResponse:
        entered = await self._entered(request)
        if isinstance(entered, HTTPResponse):
            return entered
        return await self._conversation_page(request, *entered, conversation_id)

    async def _options(self, ctx: ConsoleContext, ref: ClientRef, record: ClientRecord | None,
                       language: str | None, state: Any) -> list[Any]:
        """The templates she can receive now, as the guard will build them."""
        await ctx.registry.refresh()
        gathered = await self._params(ctx, ref, record, language)
        now = ctx.clock.now()
        options = template_options(ctx.registry, language=gathered.language, consent=gathered.consent,
                                   params=gathered.params, now=now,
                                   window=state.window(now) if state is not None else None)
        return [o for o in options if not o.nudge]

    @staticmethod
    async def _params(ctx: ConsoleContext, ref: ClientRef, record: ClientRecord | None,
                      language: str | None) -> Any:
        advisor = record.advisor.first_name if record is not None and record.advisor else None
        return await client_template_params(ref, consents=ctx.consents, profile_name=_no_profile_name,
                                            extra={"advisor_name": advisor} if advisor else None,
                                            language=language)

    async def _conversation_page(self, request: Request, ctx: ConsoleContext, session: ConsoleSession,
                                 conversation_id: str, *, draft: str | None = None,
                                 voice_notes: list[str] | None = None) -> HTTPResponse:
        base = _base(request)
        found = await ctx.desk.access(session.principal, conversation_id)
        if isinstance(found, DeskAnswer):
            return _refused(base, session, found)
        principal, handoff, record = found
        now = ctx.clock.now()
        ref = _conversation_ref(conversation_id, record, ctx.phone_number_id)
        ids = [i for i in dict.fromkeys([conversation_id, ref.wa_id, ref.user_id]) if i]
        thread = await read_thread(ctx.engine, phone_number_id=ctx.phone_number_id, ids=ids)
        state = await ctx.windows.get(ref)
        mode = ComposerMode.of(state, now)
        file = await read_client_file(ctx.engine, record, now=now, repairs=ctx.repairs) if record else None
        language = record.language if record else (handoff.language if handoff else "en")
        options = [] if mode.free_text else await self._options(ctx, ref, record, language, state)
        live = await _fingerprint(ctx, ids, ref)
        consent_now = (await self._params(ctx, ref, record, language)).consent
        if not request.headers.get("X-Console-Fragment"):  # a live refresh is no new reading
            await ctx.audit.record("read_conversation", actor=principal.name, advisor_id=principal.advisor_id,
                                   conversation_id=conversation_id, client_id=record.id if record else None,
                                   detail={"via": "console"})
        notice, kind = _notice(request)
        name = (f"{record.first_name} {record.last_name}" if record else None) or (
            handoff.client_name if handoff and handoff.client_name else inbox_view.masked(conversation_id))
        return _page(render(
            "conversation.html", base=base, session=session, now=now, live=live[:16],
            conversation_id=conversation_id, name=name,
            thread=thread, file=file, handoff=handoff,
            handoff_open=handoff is not None and handoff.status == "open",
            window={"open": mode.free_text, "closes_at": mode.closes_at}, templates=options,
            language=language, draft=draft, voice_notes=voice_notes, notice=notice, notice_kind=kind,
            zone=record.time_zone if record else "Europe/Paris", advisors=ctx.advisors,
            quiet=(f"{ctx.quiet.start:%H:%M}–{ctx.quiet.end:%H:%M}" if ctx.quiet is not None else None),
            repair_statuses=STATUSES[1:], consent_now=consent_now, countdown=lambda at: countdown(at, now)))

    # ------------------------------------------------------------------ acts
    async def _act(self, request: Request, conversation_id: str,
                   run: Callable[[ConsoleContext, ConsoleSession], Awaitable[HTTPResponse]]) -> HTTPResponse:
        entered = await self._entered(request, form=True)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, checked = entered
        found = await ctx.desk.access(checked.principal, conversation_id)
        if isinstance(found, DeskAnswer):
            return _refused(_base(request), checked, found)
        return await run(ctx, checked)

    async def reply(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            text = (request.form.get("text") or "").strip()
            if not request.form.get("confirm"):
                handoff = await ctx.handoffs.latest_for(conversation_id)
                notes = voice_check(text, handoff.language if handoff else "en")
                if notes:
                    return await self._conversation_page(request, ctx, session, conversation_id, draft=text,
                                                         voice_notes=notes)
            answer = await ctx.desk.reply(session.principal, conversation_id, {"text": text})
            return _after(request, conversation_id, answer)

        return await self._act(request, conversation_id, run)

    async def template(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            found = await ctx.desk.access(session.principal, conversation_id)
            assert not isinstance(found, DeskAnswer)
            _, handoff, record = found
            ref = _conversation_ref(conversation_id, record, ctx.phone_number_id)
            language = record.language if record else (handoff.language if handoff else None)
            gathered = await self._params(ctx, ref, record, language)
            answer = await ctx.desk.send_template(session.principal, conversation_id, {
                "template": (request.form.get("template") or "").strip(), "params": gathered.params})
            return _after(request, conversation_id, answer)

        return await self._act(request, conversation_id, run)

    async def take(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            answer = await ctx.desk.take(session.principal, conversation_id)
            return _after(request, conversation_id, answer, "taken" if answer.status == 200 else None)

        return await self._act(request, conversation_id, run)

    async def resume(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            answer = await ctx.desk.resume(session.principal, conversation_id)
            return _after(request, conversation_id, answer, "back" if answer.status == 200 else None)

        return await self._act(request, conversation_id, run)

    async def reassign(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            if not session.principal.is_manager:  # the desk refuses it too; say so plainly
                return _page(render("refused.html", base=_base(request), session=session,
                                    title="Only a manager reassigns a conversation",
                                    reason="Ask a manager to give this client to another advisor."),
                             status=403)
            answer = await ctx.desk.reassign(session.principal, conversation_id,
                                             {"advisor_id": request.form.get("advisor_id")})
            return _after(request, conversation_id, answer, "reassigned" if answer.status == 200 else None)

        return await self._act(request, conversation_id, run)

    async def follow_up(self, request: Request, conversation_id: str) -> HTTPResponse:
        async def run(ctx: ConsoleContext, session: ConsoleSession) -> HTTPResponse:
            answer = await ctx.desk.schedule_follow_up(session.principal, conversation_id, {
                "at": request.form.get("at") or "", "text": request.form.get("text") or None})
            return _after(request, conversation_id, answer, "scheduled" if answer.status == 202 else None)

        return await self._act(request, conversation_id, run)

    async def repair(self, request: Request, request_id: str) -> HTTPResponse:
        entered = await self._entered(request, form=True)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, checked = entered
        answer = await ctx.desk.update_repair(checked.principal, request_id,
                                              {"status": request.form.get("status") or None})
        if answer.status == 403:
            return _refused(_base(request), checked, answer)
        back = request.form.get("back") or ""
        if back:
            return _after(request, back, answer, "updated" if answer.status == 200 else None)
        return _redirect(f"{_base(request)}/inbox")

    # ------------------------------------------------------------------ report
    async def _manager(self, request: Request, *, form: bool = False,
                       ) -> tuple[ConsoleContext, ConsoleSession] | HTTPResponse:
        """As :meth:`_entered`, and the console's refusal for an advisor who is no manager."""
        entered = await self._entered(request, form=form)
        if isinstance(entered, HTTPResponse):
            return entered
        if not entered[1].principal.is_manager:
            return _page(render("refused.html", base=_base(request), session=entered[1],
                                title="The report is for managers",
                                reason="It shows the whole maison's WhatsApp traffic and what it costs. "
                                       "Ask a manager if you need a figure from it."), status=403)
        return entered

    async def report(self, request: Request) -> HTTPResponse:
        entered = await self._manager(request)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, session = entered
        notice, kind = _notice(request)
        since = request.args.get("since") or DEFAULT_PERIOD
        return _page(render("report.html", base=_base(request), session=session, report_page=True,
                            report=await latest_report(ctx.reports.directory), folder=ctx.reports.directory,
                            periods=PERIODS, since=since if since in dict(PERIODS) else DEFAULT_PERIOD,
                            notice=notice, notice_kind=kind))

    async def make_report(self, request: Request) -> HTTPResponse:
        from salon.report import PeriodError
        from salon.report.build import ReportError

        entered = await self._manager(request, form=True)
        if isinstance(entered, HTTPResponse):
            return entered
        ctx, session = entered
        since = request.form.get("since") or DEFAULT_PERIOD
        back = f"{_base(request)}/report"
        if since not in dict(PERIODS):
            return _redirect(f"{back}?{urlencode({'done': 'report_failed', 'why': 'unknown period'})}")
        try:
            written = await ctx.reports.make(ctx.engine.url, since, now=ctx.clock.now())
        except (PeriodError, ReportError, SQLAlchemyError, OSError) as exc:
            logger.warning("console: the report could not be made for %s (%s)", session.principal.name,
                           type(exc).__name__)
            why = str(exc) if isinstance(exc, (PeriodError, ReportError)) else "the database or the folder failed"
            return _redirect(f"{back}?{urlencode({'done': 'report_failed', 'why': why, 'since': since})}")
        logger.info("console: report of the last %s made for %s (%d messages)", since, session.principal.name,
                    written.figures.totals.messages)
        return _redirect(f"{back}?{urlencode({'done': 'generated', 'since': since})}")

    async def report_file(self, request: Request, name: str) -> HTTPResponse:
        entered = await self._manager(request)
        if isinstance(entered, HTTPResponse):
            return entered
        found = await asyncio.to_thread(report_file, entered[0].reports.directory, name)
        if found is None:
            return response.text("not found", status=404, headers=SECURITY_HEADERS)
        body, kind = found
        return response.raw(body, content_type=kind, headers=SECURITY_HEADERS)

    # ------------------------------------------------------------------ live
    async def events(self, request: Request) -> HTTPResponse | None:
        ctx = self.context()
        if ctx is None:
            return _starting()
        session = await self._signed_in(request, ctx)
        if session is None:
            return response.text("signed out", status=401)
        conversation_id = request.args.get("c")
        ids: list[str] | None = None
        ref: ClientRef | None = None
        if conversation_id:
            found = await ctx.desk.access(session.principal, conversation_id)
            if isinstance(found, DeskAnswer):
                return response.text("not yours", status=403)
            ref = _conversation_ref(conversation_id, found[2], ctx.phone_number_id)
            ids = [i for i in dict.fromkeys([conversation_id, ref.wa_id, ref.user_id]) if i]
        stream = await request.respond(content_type="text/event-stream",
                                       headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        last = await _fingerprint(ctx, ids, ref)
        loop = asyncio.get_running_loop()
        ends = loop.time() + LIVE_SECONDS
        await stream.send("retry: 3000\n\n")
        # ``since``: what the page was made from. Whatever changed between the page and
        # this stream (a window closing meanwhile) is told at once.
        since = (request.args.get("since") or "")[:16]
        if since and since != last[:16]:
            await stream.send(f"event: change\ndata: {last[:16]}\n\n")
        while loop.time() < ends:
            await asyncio.sleep(POLL_SECONDS)
            now = await _fingerprint(ctx, ids, ref)
            if now != last:
                last = now
                await stream.send(f"event: change\ndata: {now[:16]}\n\n")
            else:
                await stream.send(": quiet\n\n")
        await stream.eof()
        return None


def _after(request: Request, conversation_id: str, answer: DeskAnswer, done: str | None = None) -> HTTPResponse:
    """Back to the conversation, saying what happened."""
    base = _base(request)
    if answer.status == 401:
        return _redirect(f"{base}/signin")
    sent = str(answer.body.get("sent") or "")
    if done is None:
        done = sent if sent in NOTICES else ("error" if answer.status >= 400 else "free_form")
    if answer.status >= 400 and done not in ("refused", "failed"):
        done = "error"
    # Only a failure says why (a handoff's own "reason" is no reason for a notice).
    why = str(answer.body.get("reason") or answer.body.get("error") or "") if done in (
        "refused", "failed", "error") else ""
    query = urlencode({"done": done, "why": why} if why else {"done": done})
    return _redirect(f"{base}/c/{quote(conversation_id, safe='')}?{query}")


async def _no_profile_name(ref: ClientRef) -> str | None:
    """The console previews with the book's names only; the guard may add the WhatsApp
    profile name for a client the book does not know.
    """
    return None


def _refused(base: str, session: ConsoleSession, answer: DeskAnswer) -> HTTPResponse:
    if answer.status == 401:
        return _redirect(f"{base}/signin")
    reason = {403: "It belongs to another advisor's client. A manager can reassign it.",
              404: "Salon knows no conversation under that reference."}.get(answer.status, str(answer.body.get("error")))
    return _page(render("refused.html", base=base, session=session, reason=reason), status=answer.status)


async def _fingerprint(ctx: ConsoleContext, ids: list[str] | None, ref: ClientRef | None) -> str:
    """What the page shows has changed when this digest changes: the latest message in,
    every status out, the handoffs, and (for a conversation) whether her window is open.
    """
    inbox, outbound, handoffs = inbox_table.c, outbound_table.c, handoffs_table.c
    incoming = select(func.max(inbox.sent_us), func.count()).where(inbox.phone_number_id == ctx.phone_number_id)
    # Statuses only move up (their rank), and two of them may carry one timestamp (Meta's
    # are in seconds: delivered and read in the same second): the sum of the ranks moves
    # with every one, the latest update time may not.
    outgoing = select(func.max(outbound.updated_us), func.count(), func.sum(outbound.status_rank)).where(
        outbound.phone_number_id == ctx.phone_number_id)
    handed = select(func.max(handoffs.id), func.count(handoffs.resolved_at), func.count())
    # The open handoffs are few: who has each is read as it is (a reassignment or a take
    # changes no count).
    holders = select(handoffs.id, handoffs.advisor_id, handoffs.taken_by).where(
        handoffs.status == "open").order_by(handoffs.id)
    if ids is not None:
        incoming = incoming.where(inbox.sender_id.in_(ids))
        outgoing = outgoing.where(outbound.recipient.in_(ids))
        handed = handed.where(handoffs.conversation_id.in_(ids))
        holders = holders.where(handoffs.conversation_id.in_(ids))
    async with ctx.engine.connect() as conn:
        parts: list[Any] = [tuple((await conn.execute(q)).one()) for q in (incoming, outgoing, handed)]
        parts.append([tuple(row) for row in (await conn.execute(holders)).all()])
    now = ctx.clock.now()
    window = ""
    if ref is not None:
        state = await ctx.windows.get(ref)
        window = str(ComposerMode.of(state, now).mode)
    # The business clock jumping away from the wall clock (the demo's "+24 h") changes
    # every countdown the page shows, and which windows are open.
    drift = int((now - ctx.wall.now()).total_seconds() // DRIFT_SECONDS)
    return hashlib.sha256(repr((parts, window, drift)).encode()).hexdigest()

