"""The Sanic app: a Graph API subset (bearer token on every call) and the admin API under
``/_emulator/`` (no auth).

Graph API (``{v}``: one of ``config.api_versions``, default v21.0 (until 2027-01-21 on the
emulator's clock), v25.0, v26.0, v27.0; see :mod:`salon.emulator.versions`. Another version
is 400 / 2500 ``Unknown path components``; a served one past its end is 400 / 2635. The
version is checked before the token):

- ``POST /{v}/{phone_number_id}/messages`` — send (and mark as read / typing indicator)
- ``POST /{v}/{phone_number_id}/media`` — multipart upload → ``{"id"}``
- ``GET /{v}/{media_id}`` — media URL and metadata; also a phone number or template id
- ``DELETE /{v}/{media_id}`` — ``{"success": true}``
- ``GET /whatsapp_business/attachments/?mid=…`` — media download (bearer checked)
- ``GET /{v}/{waba_id}/message_templates`` — paged list (``limit``, ``after``, ``before``,
  ``fields``, ``name``, ``status``, ``category``, ``language``)
- ``POST /{v}/{waba_id}/message_templates`` — create (status PENDING)

Graph errors: ``{"error": {"message": "(#<code>) <title>", "type": "OAuthException",
"code": <code>, "error_data": {"messaging_product": "whatsapp", "details": "..."},
"fbtrace_id": "..."}}`` with the HTTP status of the platform reference (§3.2); a wrong or
missing token is 401 / 190.

Admin API (JSON in, JSON out; errors are ``{"error": "..."}`` with 400 or 404):

- ``POST /_emulator/inbound`` — a client writes. ``{"from": wa_id, "user_id": BSUID,
  "parent_user_id", "name", "text", "type": text|image|video|audio|document|sticker|
  location|reaction|unsupported|order|contacts, "reply_to": wamid, "button": id|title|index,
  "referral": object|true, "referred_product": {catalog_id, product_retailer_id},
  "duplicate": N, "bsuid_only": bool, "caption", "media_id" | "data_base64" + "mime_type",
  "filename", "location": {latitude, longitude, name, address, url}, "message_id" + "emoji"
  (reaction), "unsupported_type", "order", "contacts", "deliver": bool}`` (``from`` or
  ``user_id``) → ``{"wamid", "timestamp", "type", "window_closes_at", "message"}``; with
  ``"deliver": false`` the client's message is recorded (its window opens) but the
  webhook is not sent: its exact body comes back as ``"webhook"`` for the caller to
  deliver itself (load drivers that time the bot's acknowledgement)
  ``bsuid_only: true`` plays a username-only client (no ``from`` / ``wa_id`` in the
  webhook; with only ``from`` the emulator gives the client a BSUID, country from the
  number)
- ``POST /_emulator/echo`` — ``{"to": wa_id | BSUID, "text", "type"?: text|image|video|
  audio|document|sticker (``text`` is then the caption), "duplicate"?: N}``: an advisor
  writes from the WhatsApp Business app on the business number (coexistence). The bot gets
  a signed ``smb_message_echoes`` webhook (``to`` the phone number unless the client is
  username-only, ``to_user_id`` the BSUID when known); the client's thread shows it as
  the business's message (``"source": "business_app"``); no outbox entry, no statuses,
  the window is not touched → ``{"wamid", "timestamp", "type", "client", "message",
  "webhook"}``
- ``POST /_emulator/preferences`` — ``{"from" | "user_id", "value": "stop"|"resume"}``
- ``POST /_emulator/identity_change`` — ``{"client": wa_id | BSUID, "new_user_id"?,
  "new_parent_user_id"?, "new_wa_id"?}``: ``new_wa_id`` → ``user_changed_number`` (BSUID
  regenerated unless ``new_user_id``), else ``user_changed_user_id`` (new BSUID generated
  unless given; a parent id is regenerated when the client had one). Sends the bot a
  ``system`` message (no ``contacts``) → ``{"type", "client": {key, wa_id, user_id,
  parent_user_id, name, bsuid_only, marketing_stopped}, "previous": {wa_id, user_id,
  parent_user_id}, "wamid", "webhook"}``. Window, history and pending statuses follow the
  client; sends to an old id are accepted, then fail with 131026. 404 unknown client, 409
  an id of another client, 400 otherwise.
- ``POST /_emulator/call`` — ``{"client", "answered"?: true, "duration"?: 62}``: a
  user-initiated call; ``calls`` webhooks ``connect`` then ``terminate`` (``COMPLETED``
  with ``start_time``/``end_time``/``duration``, or ``FAILED``); opens / refreshes the window
  → ``{"call_id", "client", "answered", "status", "duration", "window_closes_at",
  "webhooks": [connect, terminate]}``
- ``POST /_emulator/share_contact`` — ``{"client", "reply_to"?: wamid, "phone"?}``: the
  client taps "Share contact info" under the latest delivered contact-information request
  (or ``reply_to``) → a ``contacts`` message (``origin: "contact_request"``, ``context`` =
  the request) → ``{"wamid", "timestamp", "type": "contacts", "reply_to",
  "window_closes_at", "message"}``; 400 when no request was delivered
- ``GET /_emulator/clock`` → ``{"now", "offset_seconds"}``; ``POST /_emulator/clock`` with
  ``{"advance_seconds": N}`` or ``{"set": "<ISO 8601 with offset>"}`` (naive → 400)
- ``GET /_emulator/outbox?to=`` → ``[{"wamid", "to", "type", "template", "language",
  "category", "body", "header", "footer", "buttons", "payload", "status", "error_code",
  "error_details", "sent_at", "in_window", "statuses", "drop_reason"}]`` in send order,
  rejected sends included (``status: "rejected"``, ``wamid: null``) and silently dropped
  ones (a BSUID in ``to``: ``status: "dropped"``, ``drop_reason: "bsuid_in_to"``, no
  statuses; not in the thread)
- ``POST /_emulator/templates/{name}/status`` — ``{"status", "language"?, "reason"?,
  "other_info"?, "rejection_info"?, "disable_info"?}``; every language when ``language``
  is omitted; emits ``message_template_status_update``
- ``GET /_emulator/templates`` — the templates as the Graph API lists them
- ``GET /_emulator/webhooks?state=`` — every POST to the bot with its attempts
- ``POST /_emulator/wait_idle`` — ``{"timeout": s}`` → ``{"idle": bool}`` once no status
  is pending and every webhook was delivered or given up
- ``GET /_emulator/conversations`` — clients, windows, counts
- ``GET|POST /_emulator/config`` — settings (POST changes ``webhook_url`` and the status
  delays at run time)
- ``POST /_emulator/verify`` — Meta's GET handshake against the webhook URL
- ``POST /_emulator/reset`` — clients, outbox, media, webhook log, clock offset, templates
- ``GET /_emulator/health`` — ``{"ok": true}``
- ``GET /_emulator/thread?client=<wa_id or BSUID>&limit=N`` — one client's conversation
  in both directions, in the order things happened: ``{"client": {key, wa_id, user_id,
  name, marketing_stopped} | null, "now", "offset_seconds", "business": {name,
  display_phone_number}, "window": {open, last_inbound_at, closes_at}, "messages": [...]}``;
  a client's message is ``{"direction": "in", wamid, type, text, reply_to, tapped: {kind,
  id, title} | null, media, at, status}``; a business message is ``{"direction": "out",
  source, wamid, to, type, template, language, category, header, body, footer, buttons,
  options: [{kind, id, title, description?, index?, payload?}], interactive_type,
  list_button, status, error_code, error_details, in_window, statuses, at}`` (rejected
  sends included); ``source`` is ``cloud_api``, or ``business_app`` for an advisor's
  message from the WhatsApp Business app (``/_emulator/echo``)
- ``GET /_emulator/phone`` — the phone page (``?client=&name=&followup=``): chat as a
  client in a browser; its files under ``GET /_emulator/static/<name>``
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from sanic import Sanic, response
from sanic.config import Config
from sanic.exceptions import MethodNotSupported, NotFound, SanicException
from sanic.request import File, Request
from sanic.response import HTTPResponse

from salon.clock import Clock
from salon.emulator.config import EmulatorConfig
from salon.emulator.graph_errors import GraphError, graph_error_body
from salon.emulator.phone import register_phone_routes
from salon.emulator.service import AdminError, Emulator
from salon.emulator.template_store import TemplateStore, graph_template
from salon.emulator.versions import check_version
from salon.templates.model import Template

__all__ = ["create_app", "emulator_of"]

logger = logging.getLogger(__name__)

_VERSION: Final = r"<version:v\d+\.\d+>"
_CURSOR_PREFIX: Final = "salon-emulator-templates:"
_MAX_MEDIA: Final = {
    "image": 5 * 2**20,
    "video": 16 * 2**20,
    "audio": 16 * 2**20,
    "application": 100 * 2**20,
    "text": 100 * 2**20,
    "sticker": 500 * 2**10,
}
_MEDIA_MIME_PREFIXES: Final = ("image/", "video/", "audio/", "application/", "text/")


class _EmulatorSanic(Sanic):
    """Sanic rewrites some of its own methods when an app starts ("touch-up"). With
    ``test_mode`` it keeps the originals and rewrites those, so several emulator apps can
    start one after the other in one process (tests); it changes nothing else for this
    class (Sanic's own ``Sanic.test_mode`` stays as it is).
    """

    test_mode = True


def emulator_of(app: Sanic) -> Emulator:
    """The :class:`Emulator` behind an app made by :func:`create_app`."""
    return app.ctx.emulator


def _json(data: Any, status: int = 200) -> HTTPResponse:
    return response.json(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _graph_error(error: GraphError) -> HTTPResponse:
    return _json(error.body(), error.http_status)


def _base_url(request: Request, emulator: Emulator) -> str:
    return emulator.config.base_url or f"{request.scheme}://{request.host}"


def _body(request: Request, *, graph: bool) -> Any:
    raw = request.body or b""
    if not raw.strip():
        if graph:
            raise GraphError(100, "The request body is empty; a JSON object is expected.")
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        if graph:
            raise GraphError(100, "The request body is not valid JSON.") from None
        raise AdminError("the request body is not valid JSON") from None
    if not graph and not isinstance(data, Mapping):
        raise AdminError("the request body must be a JSON object")
    return data


def _check_token(request: Request, emulator: Emulator) -> None:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is None:
        token = request.args.get("access_token")
    if token is None:
        raise GraphError(190, "An access token is required to request this resource.")
    if not secrets.compare_digest(token.encode(), emulator.config.access_token.encode()):
        raise GraphError(190, "The access token could not be decrypted or is invalid.")


def _check_version(request: Request, version: str, emulator: Emulator) -> None:
    """The version segment first, as graph.facebook.com does (before the token)."""
    check_version(version, emulator.config.api_versions, emulator.now(), request.path)


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, total: int) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise GraphError(131059, f"Invalid pagination cursor {cursor!r}; retry without it.")
    index = int(text[len(_CURSOR_PREFIX) :])
    if index >= max(total, 1):
        raise GraphError(131059, f"Pagination cursor {cursor!r} is out of range; retry without it.")
    return index


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    templates: TemplateStore | None = None,
    name: str | None = None,
) -> Sanic:
    """A new emulator app. ``clock`` is the base clock (default: the system clock); the
    admin API shifts it. ``templates`` defaults to ``config.templates_file`` or the
    project's ``templates.yml``.
    """
    config = config or EmulatorConfig.from_env()
    sanic_config = Config()
    sanic_config.REGISTER = False
    sanic_config.ACCESS_LOG = False
    sanic_config.NOISY_EXCEPTIONS = False
    app = _EmulatorSanic(
        name or f"salon-emulator-{secrets.token_hex(4)}",
        config=sanic_config,
        configure_logging=False,
    )
    emulator = Emulator(config, clock=clock, templates=templates)
    app.ctx.emulator = emulator

    async def _stop(_app: Sanic, _loop: Any) -> None:
        await emulator.close()

    app.before_server_stop(_stop)
    _register_error_handlers(app)
    _register_graph_message_routes(app, emulator)
    _register_graph_template_routes(app, emulator)
    _register_admin_routes(app, emulator)
    _register_client_routes(app, emulator)
    _register_inspection_routes(app, emulator)
    register_phone_routes(app, emulator)
    return app


def _register_error_handlers(app: Sanic) -> None:
    """Graph errors as Meta words them; admin errors as ``{"error": ...}``; unknown routes
    and crashes in the style of the API they hit.
    """

    @app.exception(GraphError)
    async def _on_graph_error(_request: Request, error: GraphError) -> HTTPResponse:
        return _graph_error(error)

    @app.exception(AdminError)
    async def _on_admin_error(_request: Request, error: AdminError) -> HTTPResponse:
        return _json({"error": str(error)}, error.status)

    @app.exception(NotFound, MethodNotSupported)
    async def _on_not_found(request: Request, error: Exception) -> HTTPResponse:
        if request.path.startswith("/_emulator/"):
            return _json({"error": f"no route {request.method} {request.path}"}, 404)
        return _json(
            graph_error_body(100, f"Unknown path components: {request.path}"),
            400,
        )

    @app.exception(Exception)
    async def _on_unexpected(request: Request, error: Exception) -> HTTPResponse:
        status = error.status_code if isinstance(error, SanicException) else 500
        if not isinstance(error, SanicException):
            logger.exception("emulator route %s %s crashed", request.method, request.path)
        if request.path.startswith("/_emulator/"):
            return _json({"error": f"{type(error).__name__}: {error}"}, status)
        code = 131000 if status >= 500 else 100
        return _json(graph_error_body(code, f"{type(error).__name__}: {error}"), status)


def _register_graph_message_routes(app: Sanic, emulator: Emulator) -> None:
    """Graph API: sending, media (upload, metadata, delete, download) and object lookups."""

    @app.post(f"/{_VERSION}/<phone_number_id>/messages")
    async def send_message(request: Request, version: str, phone_number_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        emulator.check_phone_number(phone_number_id)
        body = _body(request, graph=True)
        return _json(await emulator.send(phone_number_id, version, body))

    @app.post(f"/{_VERSION}/<phone_number_id>/media")
    async def upload_media(request: Request, version: str, phone_number_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        emulator.check_phone_number(phone_number_id)
        upload, mime = _checked_upload(request)
        item = emulator.store_media(upload.body, mime, upload.name or None)
        return _json({"id": item.id})

    @app.get(f"/{_VERSION}/<object_id>")
    async def get_object(request: Request, version: str, object_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        if object_id == emulator.config.phone_number_id:
            return _json(_phone_number_object(emulator.config))
        template = next((t for t in emulator.templates.all() if t.template_id == object_id), None)
        if template is not None:
            return _json(graph_template(template))
        return _json(emulator.media_info(object_id, _base_url(request, emulator)))

    @app.delete(f"/{_VERSION}/<object_id>")
    async def delete_media(request: Request, version: str, object_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        emulator.media_info(object_id, "")  # raises 100 when unknown
        emulator.media.pop(object_id, None)
        return _json({"success": True})

    @app.get("/whatsapp_business/attachments/")
    async def download_media(request: Request) -> HTTPResponse:
        _check_token(request, emulator)
        media_id = request.args.get("mid", "")
        item = emulator.media.get(media_id)
        if item is None:
            return _json(graph_error_body(100, f"Unknown media {media_id!r}."), 404)
        return response.raw(item.data, content_type=item.mime_type)


def _register_graph_template_routes(app: Sanic, emulator: Emulator) -> None:
    """Graph API: the account's message templates (paged list, create)."""

    @app.get(f"/{_VERSION}/<waba_id>/message_templates")
    async def list_templates(request: Request, version: str, waba_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        _check_waba(waba_id, emulator, "get")
        items = _filtered_templates(emulator.templates.all(), request)
        limit = _page_limit(request)
        total = len(items)
        start = _page_start(request, total, limit)
        page = items[start : start + limit]
        body: dict[str, Any] = {"data": _template_data(page, request.args.get("fields"))}
        if page:
            body["paging"] = _paging(request, emulator, start, start + len(page), total)
        return _json(body)

    @app.post(f"/{_VERSION}/<waba_id>/message_templates")
    async def create_template(request: Request, version: str, waba_id: str) -> HTTPResponse:
        _check_version(request, version, emulator)
        _check_token(request, emulator)
        _check_waba(waba_id, emulator, "post")
        body = _body(request, graph=True)
        if not isinstance(body, Mapping):
            raise GraphError(100, "The request body must be a JSON object.")
        template = emulator.templates.create(body)
        return _json(
            {"id": template.template_id, "status": template.status, "category": template.category}
        )


def _register_admin_routes(app: Sanic, emulator: Emulator) -> None:
    """Admin API: health, settings, clock, webhook verification, waiting for quiet and
    reset.
    """

    @app.get("/_emulator/health")
    async def health(_request: Request) -> HTTPResponse:
        return _json({"ok": True})

    @app.get("/_emulator/config")
    async def get_config(request: Request) -> HTTPResponse:
        return _json(emulator.config.public(_base_url(request, emulator)))

    @app.post("/_emulator/config")
    async def post_config(request: Request) -> HTTPResponse:
        emulator.update_config(_body(request, graph=False))
        return _json(emulator.config.public(_base_url(request, emulator)))

    @app.get("/_emulator/clock")
    async def get_clock(_request: Request) -> HTTPResponse:
        return _json(emulator.clock_view())

    @app.post("/_emulator/clock")
    async def post_clock(request: Request) -> HTTPResponse:
        return _json(emulator.move_clock(_body(request, graph=False)))

    @app.post("/_emulator/wait_idle")
    async def wait_idle(request: Request) -> HTTPResponse:
        body = _body(request, graph=False)
        timeout = float(body.get("timeout", 10))
        return _json({"idle": await emulator.wait_idle(timeout)})

    @app.post("/_emulator/verify")
    async def verify(request: Request) -> HTTPResponse:
        body = _body(request, graph=False)
        token = body.get("verify_token")
        return _json(await emulator.verify_webhook(token if isinstance(token, str) else None))

    @app.post("/_emulator/reset")
    async def reset(_request: Request) -> HTTPResponse:
        await emulator.reset()
        return _json({"ok": True, **emulator.clock_view()})


def _register_inspection_routes(app: Sanic, emulator: Emulator) -> None:
    """Admin API: what the business sent (outbox), the clients, the webhook log, and the
    templates with their status changes.
    """

    @app.get("/_emulator/outbox")
    async def outbox(request: Request) -> HTTPResponse:
        return _json(emulator.outbox_view(request.args.get("to")))

    @app.get("/_emulator/conversations")
    async def conversations(_request: Request) -> HTTPResponse:
        return _json(emulator.conversations_view())

    @app.get("/_emulator/webhooks")
    async def webhooks(request: Request) -> HTTPResponse:
        items = emulator.dispatcher.deliveries()
        state = request.args.get("state")
        if state:
            items = [d for d in items if d["state"] == state]
        return _json(items)

    @app.get("/_emulator/templates")
    async def templates_view(_request: Request) -> HTTPResponse:
        return _json([graph_template(t) for t in emulator.templates.all()])

    @app.post("/_emulator/templates/<template_name>/status")
    async def template_status(request: Request, template_name: str) -> HTTPResponse:
        return _json(emulator.set_template_status(template_name, _body(request, graph=False)))


def _register_client_routes(app: Sanic, emulator: Emulator) -> None:
    """Admin API: playing the client (messages, preferences, identity changes, calls,
    shared contact info) and the advisor on the WhatsApp Business app (echoes).
    """

    @app.post("/_emulator/inbound")
    async def inbound(request: Request) -> HTTPResponse:
        return _json(
            emulator.inbound(_body(request, graph=False), base_url=_base_url(request, emulator))
        )

    @app.post("/_emulator/echo")
    async def echo(request: Request) -> HTTPResponse:
        return _json(emulator.echo(_body(request, graph=False)))

    @app.post("/_emulator/preferences")
    async def preferences(request: Request) -> HTTPResponse:
        return _json(emulator.preferences(_body(request, graph=False)))

    @app.post("/_emulator/identity_change")
    async def identity_change(request: Request) -> HTTPResponse:
        return _json(emulator.identity_change(_body(request, graph=False)))

    @app.post("/_emulator/call")
    async def call(request: Request) -> HTTPResponse:
        return _json(emulator.call(_body(request, graph=False)))

    @app.post("/_emulator/share_contact")
    async def share_contact(request: Request) -> HTTPResponse:
        return _json(emulator.share_contact(_body(request, graph=False)))


def _phone_number_object(cfg: EmulatorConfig) -> dict[str, Any]:
    """``GET /{version}/{phone_number_id}``: the business number as Graph describes it."""
    return {
        "verified_name": cfg.verified_name,
        "display_phone_number": cfg.display_phone_number,
        "id": cfg.phone_number_id,
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
    }


def _checked_upload(request: Request) -> tuple[File, str]:
    """The uploaded file of ``POST /{version}/{phone_number_id}/media`` and its mime
    type, checked as Meta does (``messaging_product``, supported type, size limit).
    """
    if request.form.get("messaging_product") != "whatsapp":
        raise GraphError(
            100, "The parameter messaging_product is required and must be 'whatsapp'."
        )
    upload = request.files.get("file") if request.files else None
    if upload is None:
        raise GraphError(100, "The parameter file is required (multipart/form-data).")
    mime = (request.form.get("type") or upload.type or "").split(";")[0].strip()
    if not mime.startswith(_MEDIA_MIME_PREFIXES):
        raise GraphError(131053, f"Unsupported file type {mime!r}.")
    family = "sticker" if mime == "image/webp" else mime.split("/")[0]
    limit = _MAX_MEDIA.get(family, 100 * 2**20)
    if len(upload.body) > limit:
        raise GraphError(
            131053, f"File is {len(upload.body)} bytes; the limit for {mime} is {limit}."
        )
    return upload, mime


def _filtered_templates(items: list[Template], request: Request) -> list[Template]:
    """The templates the ``name`` (substring or exact), ``status``, ``category`` and
    ``language`` query parameters select (case-insensitive).
    """
    for key in ("name", "status", "category", "language"):
        wanted = request.args.get(key)
        if wanted:
            items = [
                t
                for t in items
                if str(getattr(t, key)).upper() == wanted.upper()
                or (key == "name" and wanted in t.name)
            ]
    return items


def _page_limit(request: Request) -> int:
    """The ``limit`` query parameter (1 to 1000, default 25)."""
    try:
        limit = int(request.args.get("limit", "25"))
    except ValueError:
        raise GraphError(100, "Param limit must be an integer.") from None
    if not 1 <= limit <= 1000:
        raise GraphError(100, "Param limit must be between 1 and 1000.")
    return limit


def _page_start(request: Request, total: int, limit: int) -> int:
    """The index of a page's first template: after the ``after`` cursor, ``limit``
    before the ``before`` cursor, or 0.
    """
    after, before = request.args.get("after"), request.args.get("before")
    if after:
        return _decode_cursor(after, total) + 1
    if before:
        end_excl = _decode_cursor(before, total)
        return max(0, end_excl - limit)
    return 0


def _template_data(page: list[Template], wanted_fields: str | None) -> list[dict[str, Any]]:
    """The page's templates as Graph lists them, cut to ``fields`` (and ``id``) if given."""
    keep = {f.strip() for f in wanted_fields.split(",")} | {"id"} if wanted_fields else None
    data = []
    for template in page:
        item = graph_template(template)
        if keep is not None:
            item = {k: v for k, v in item.items() if k in keep}
        data.append(item)
    return data


def _paging(
    request: Request, emulator: Emulator, start: int, end: int, total: int
) -> dict[str, Any]:
    """Cursors of the page ``[start, end)`` and the ``next`` / ``previous`` URLs with the
    request's other query parameters.
    """
    paging: dict[str, Any] = {
        "cursors": {"before": _encode_cursor(start), "after": _encode_cursor(end - 1)}
    }
    params = {k: v for k, v in request.args.items() if k not in ("after", "before")}
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in params.items()}
    base = f"{_base_url(request, emulator)}{request.path}"
    if end < total:
        paging["next"] = f"{base}?{urlencode({**flat, 'after': _encode_cursor(end - 1)})}"
    if start > 0:
        paging["previous"] = f"{base}?{urlencode({**flat, 'before': _encode_cursor(start)})}"
    return paging


def _check_waba(waba_id: str, emulator: Emulator, verb: str) -> None:
    if waba_id != emulator.config.waba_id:
        raise GraphError(
            100,
            f"Unsupported {verb} request. Object with ID '{waba_id}' does not exist, cannot "
            "be loaded due to missing permissions, or does not support this operation.",
        )
