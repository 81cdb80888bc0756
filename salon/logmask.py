"""No personal data in logs: one masking step for every log record of a Salon process.

:func:`install_log_masking` wraps the process's log record factory, so every record,
whichever library logs it and whichever handler writes it, leaves its logger already
masked: the message is formatted once, masked, and stored without its arguments; an
exception's traceback and a stack are masked the same way.

What is masked:

- phone numbers: E.164 (``+33 6 12 34 56 78``, ``+33612345678``) and bare WhatsApp ids
  (runs of 8 to 15 digits standing alone);
- BSUIDs (``US.13491208655302741918``, see :func:`salon.whatsapp.addressing.is_bsuid`);
- email addresses;
- values under personal keys of structured arguments (``text``, ``body``, ``caption``,
  ``name``, ``profile_name``, ``email``, ``phone`` ...), dicts and lists included;
- message bodies and profile names the channel has seen (:func:`remember`), wherever
  they appear, including in Rasa's own debug lines (``Received user message '...'``);
- the texts Rasa's debug lines quote: the client's (``parse_data_text``) and the
  assistant's answers (``BotUttered(...)``, which carry names, bookings and orders);
- Meta's message ids (``wamid.HBgL…`` is base64 holding the client's number).

Loggers that write raw values below INFO (:data:`RAW_VALUE_LOGGERS`: aiosqlite logs every
statement with its parameters at DEBUG) are held at INFO once masking is installed.

Each masked value becomes a short tag (``[phone:3f9a0c]``) keyed with
``SALON_LOG_MASK_KEY`` (random per process when unset), so lines about the same client
can be correlated without the value itself. Logs stay readable; nothing in them
identifies a client.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

__all__ = [
    "PERSONAL_KEYS",
    "SECRET_KEYS",
    "RAW_VALUE_LOGGERS",
    "MaskingFilter",
    "install_log_masking",
    "mask_record",
    "mask_text",
    "mask_value",
    "remember",
    "uninstall_log_masking",
]

PERSONAL_KEYS: Final = frozenset(
    {
        "text", "body", "caption", "name", "profile_name", "first_name", "last_name",
        "full_name", "email", "phone", "wa_id", "user_id", "from", "recipient",
        "recipient_id", "address", "title", "message", "formatted_name", "lead",
    }
)

SECRET_KEYS: Final = frozenset(
    {"token", "auth_token", "access_token", "authorization", "secret", "app_secret",
     "verify_token", "password", "api_key", "jwt"}
)

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_E164: Final = re.compile(r"\+\d(?:[\s\-().]{0,2}\d){6,16}")
_DIGITS: Final = re.compile(r"(?<![\w.])\d{8,15}(?![\w])")
_BSUID: Final = re.compile(r"\b[A-Z]{2}\.[A-Z0-9]{6,}(?:\.[A-Z0-9]+)*\b")
# Rasa's debug lines that quote what the client wrote or what the assistant answered
# (its answers carry names, bookings, orders; a response's ``lead`` is its first sentence):
# ``user message '…'``, ``"text": "…"`` (or ``"lead"``) and
# ``"parse_data_text": "…"``, and its events' reprs (``BotUttered('…', {…``,
# ``BotUttered(text: …, data: …``, ``UserUttered(text: …, intent: …``).
_QUOTED: Final = (
    re.compile(r"(user message ')(.*?)(' with intent)", re.DOTALL),
    re.compile(r"""(["'](?:[a-z_]*_)?(?:text|lead)["']\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""),
    # the same inside a JSON string (an event's data as Rasa's structured line quotes it):
    # ``\"lead\": \"…\"``, the value ending at the first quote not escaped twice.
    re.compile(r'(\\"(?:[a-z_]*_)?(?:text|lead)\\"\s*:\s*\\")(.*?)((?<!\\)\\")', re.DOTALL),
    re.compile(r"(BotUttered\(')(.*?)(', \{)", re.DOTALL),
    re.compile(r"(BotUttered\(text: )(.*?)(, data: )", re.DOTALL),
    re.compile(r"(UserUttered\(text: )(.*?)(, intent: )", re.DOTALL),
)
# Secrets: a ``token=`` (or ``access_token=``, ``secret=``, ``key=``) query parameter, and
# the credential of an ``Authorization`` header or a bearer token, wherever they are quoted
# (an error string with the URL it called, a repr of headers).
_SECRETS: Final = (
    re.compile(r"(?i)([?&;](?:[a-z_]*token|secret|key|password)=)([^&\s'\")]+)"),
    re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?)([^'\",}\n]+)"),
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=\-]{8,})"),
)
# Meta's message ids carry the client's number (base64 after ``wamid.``): tagged whole.
_WAMID: Final = re.compile(r"\bwamid\.[A-Za-z0-9+/=_\-]{6,}")
# Loggers that trace raw values below INFO: aiosqlite logs every statement with its
# parameters (message bodies, names, payloads) at DEBUG. Kept at INFO once masking is on.
RAW_VALUE_LOGGERS: Final = ("aiosqlite",)

_KEY = (os.environ.get("SALON_LOG_MASK_KEY") or secrets.token_hex(16)).encode()
_REMEMBERED_MAX: Final = 500
_MIN_REMEMBERED: Final = 3
_remembered: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
_installed = False
_previous_factory: Callable[..., logging.LogRecord] | None = None


def _tag(kind: str, value: str) -> str:
    digest = hashlib.blake2s(value.encode("utf-8", "replace"), key=_KEY[:32], digest_size=3).hexdigest()
    return f"[{kind}:{digest}]"


def remember(*values: str | None) -> None:
    """Mask these exact values (a message body, a profile name) from now on, wherever
    they appear. The most recent few hundred are kept.
    """
    with _lock:
        for value in values:
            if not isinstance(value, str):
                continue
            value = value.strip()
            if len(value) < _MIN_REMEMBERED or value.startswith("/"):
                continue  # intent triggers are ours, not the client's words
            _remembered[value] = None
            _remembered.move_to_end(value)
            while len(_remembered) > _REMEMBERED_MAX:
                _remembered.popitem(last=False)


def _mask_remembered(text: str) -> str:
    with _lock:
        present = [value for value in _remembered if value in text]
    # Longest first, so a body that contains a name is masked whole; whole words only,
    # so a short body ("Ana", "oui") does not eat into the words of other lines.
    for value in sorted(present, key=len, reverse=True):
        # A tag is "[text:" and hex digits: no backslash for re.sub to expand.
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", _tag("text", value), text)
    return text


def mask_text(text: str) -> str:
    """``text`` with every personal value replaced by a tag."""
    if not text:
        return text
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m.group(1) + "[secret]", text)
    for pattern in _QUOTED:
        text = pattern.sub(lambda m: m.group(1) + _tag("text", m.group(2)) + (m.group(3) if m.lastindex == 3 else ""),
                           text)
    text = _mask_remembered(text)
    text = _WAMID.sub(lambda m: _tag("wamid", m.group(0)), text)
    text = _EMAIL.sub(lambda m: _tag("email", m.group(0)), text)
    text = _BSUID.sub(lambda m: _tag("bsuid", m.group(0)), text)
    text = _E164.sub(lambda m: _tag("phone", re.sub(r"\D", "", m.group(0))), text)
    return _DIGITS.sub(lambda m: _tag("phone", m.group(0)), text)


def mask_value(value: Any, _depth: int = 0) -> Any:
    """A structured log argument with personal keys masked (dicts, lists, tuples)."""
    if _depth > 8:
        return "[…]"
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS and item not in (None, ""):
                out[key] = "[secret]"
            elif isinstance(key, str) and key.lower() in PERSONAL_KEYS and isinstance(item, (str, int)) and item != "":
                out[key] = _tag("text" if key.lower() not in ("email", "phone", "wa_id") else key.lower(), str(item))
            else:
                out[key] = mask_value(item, _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = [mask_value(item, _depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask ``record`` in place: message formatted and masked, arguments dropped, an
    exception's text and a stack masked too.
    """
    if getattr(record, "_salon_masked", False):
        return record
    try:
        args = record.args
        if isinstance(args, Mapping):
            args = mask_value(args)
        elif isinstance(args, tuple):
            args = tuple(mask_value(a) for a in args)
        message = str(record.msg) % args if args else str(record.msg)
    except Exception:  # a malformed call: keep what can be kept, masked
        message = f"{record.msg} {record.args!r}"
    record.msg = mask_text(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
        # The formatted (masked) text stands in for the exception itself: a handler
        # formatting exc_info again would bring the values back.
        record.exc_info = None
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    record._salon_masked = True
    return record


class MaskingFilter(logging.Filter):
    """The same masking as a handler filter (for handlers set up outside Salon)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install_log_masking(handlers: Iterable[logging.Handler] = ()) -> None:
    """Mask every log record of this process from now on (idempotent). ``handlers``
    also get a :class:`MaskingFilter`, for records built by hand (``makeLogRecord``).
    """
    global _installed, _previous_factory
    with _lock:
        if not _installed:
            previous = logging.getLogRecordFactory()
            _previous_factory = previous

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return mask_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _installed = True
        for name in RAW_VALUE_LOGGERS:
            raw = logging.getLogger(name)
            if raw.level < logging.INFO:  # NOTSET included: root may be set to DEBUG later
                raw.setLevel(logging.INFO)
    for handler in handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


def uninstall_log_masking() -> None:
    """Back to the factory found at installation (tests)."""
    global _installed
    with _lock:
        if _installed and _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
        _installed = False
