"""WhatsApp Cloud API errors: the one place that knows what each error code means.

Every code of the reference table (``../shared/reference/whatsapp-platform.md`` §3.2, plus
the legacy On-Premises ``470``) maps to a typed exception class carrying:

- ``retryable``: whether the *same* request may be sent again unchanged;
- ``retry_delay(attempt)``: how long to wait before retry number ``attempt`` (0-based),
  or ``None`` when it must not be retried (any more);
- ``closes_window``: the error means the customer service window is closed (131047, 470).

Errors arrive in two shapes, both parsed here and neither of which ever crashes the
parser: the synchronous Graph error body (``{"error": {...}}``, :func:`from_graph_error`)
and the asynchronous ``statuses[].errors[]`` element (:func:`from_status_error`).

Retry delays are deterministic (no jitter); a dispatcher that wants jitter adds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

__all__ = [
    "ERROR_CLASSES",
    "KNOWN_CODES",
    "AccessError",
    "AccountError",
    "AuthError",
    "BsuidRecipientError",
    "EcosystemLimitError",
    "ExponentialBackoff",
    "FixedDelay",
    "FlowError",
    "GraphVersionError",
    "MarketingMessagesApiError",
    "MarketingOptOutError",
    "MediaError",
    "NoRetry",
    "PaginationCursorError",
    "PairRateLimitError",
    "RateLimitError",
    "RecipientError",
    "RequestError",
    "RetryPolicy",
    "TemplateError",
    "TemplatePausedError",
    "ThroughputLimitError",
    "TransientError",
    "NoResponseError",
    "UnknownWhatsAppError",
    "WhatsAppError",
    "WindowClosedError",
    "error_class_for",
    "errors_from_status",
    "errors_from_webhook",
    "from_graph_error",
    "from_status_error",
    "http_status_for",
    "title_for",
]


# --------------------------------------------------------------------------- policies


class RetryPolicy:
    """When to retry: ``delay(attempt)`` for the 0-based retry number, None = give up."""

    def delay(self, attempt: int) -> timedelta | None:
        raise NotImplementedError

    @staticmethod
    def _check(attempt: int) -> None:
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")


@dataclass(frozen=True)
class NoRetry(RetryPolicy):
    """Never retry the same request."""

    def delay(self, attempt: int) -> timedelta | None:
        self._check(attempt)
        return None


@dataclass(frozen=True)
class FixedDelay(RetryPolicy):
    """The same wait before each of at most ``max_attempts`` retries."""

    wait: timedelta
    max_attempts: int

    def delay(self, attempt: int) -> timedelta | None:
        self._check(attempt)
        if attempt >= self.max_attempts:
            return None
        return self.wait


@dataclass(frozen=True)
class ExponentialBackoff(RetryPolicy):
    """``min(cap, base * factor ** attempt)`` seconds, at most ``max_attempts`` retries."""

    base_seconds: float
    factor: float
    cap_seconds: float
    max_attempts: int

    def delay(self, attempt: int) -> timedelta | None:
        self._check(attempt)
        if attempt >= self.max_attempts:
            return None
        seconds = self.base_seconds * self.factor**attempt
        return timedelta(seconds=min(self.cap_seconds, seconds))


NEVER = NoRetry()
#: 131056 pair rate limit: Meta suggests retrying after 4^X seconds (X = 0, 1, 2 …).
PAIR_RATE_POLICY = ExponentialBackoff(base_seconds=1, factor=4, cap_seconds=4**6, max_attempts=8)
#: 130429 throughput: exponential backoff, 1 s doubling up to 5 min.
THROUGHPUT_POLICY = ExponentialBackoff(
    base_seconds=1, factor=2, cap_seconds=300, max_attempts=10
)
#: 131049 per-user marketing cap / ecosystem engagement: not before 24 h, twice at most.
ECOSYSTEM_POLICY = FixedDelay(wait=timedelta(hours=24), max_attempts=2)
#: Transient server errors (1, 2, 131000, 131016, 133004).
TRANSIENT_POLICY = ExponentialBackoff(
    base_seconds=2, factor=2, cap_seconds=600, max_attempts=6
)
#: 131057 account maintenance (throughput upgrade takes about a minute).
MAINTENANCE_POLICY = ExponentialBackoff(
    base_seconds=30, factor=2, cap_seconds=600, max_attempts=5
)
#: Graph-level rate limits (4 app-level, 80007 WABA-level).
GRAPH_RATE_POLICY = ExponentialBackoff(
    base_seconds=60, factor=2, cap_seconds=3600, max_attempts=6
)
#: 134101 Marketing Messages API: template still syncing, up to 10 minutes.
SYNCING_POLICY = FixedDelay(wait=timedelta(minutes=10), max_attempts=3)
#: 131059 invalid pagination cursor: restart the listing at once, without the cursor.
RESTART_POLICY = FixedDelay(wait=timedelta(0), max_attempts=1)


# --------------------------------------------------------------------------- classes


class WhatsAppError(Exception):
    """An error reported by the WhatsApp Cloud API (sync or async).

    Class attributes describe the code family; instances carry what Meta sent.
    """

    codes: ClassVar[frozenset[int]] = frozenset()
    default_title: ClassVar[str] = "WhatsApp error"
    retryable: bool = False
    closes_window: ClassVar[bool] = False
    retry_policy: RetryPolicy = NEVER
    http_status_default: ClassVar[int | None] = 400

    def __init__(
        self,
        code: int,
        title: str | None = None,
        message: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        *,
        http_status: int | None = None,
        href: str | None = None,
        error_type: str | None = None,
        error_subcode: int | None = None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.title = title or self.default_title
        self.message = message or self.title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status if http_status is not None else self.http_status_default
        self.href = href
        self.error_type = error_type
        self.error_subcode = error_subcode
        self.raw: dict[str, Any] = dict(raw) if raw is not None else {}
        text = f"({code}) {self.title}"
        if details:
            text += f": {details}"
        super().__init__(text)

    def retry_delay(self, attempt: int) -> timedelta | None:
        """Wait before retry number ``attempt`` (0-based), None if not to be retried."""
        if not self.retryable:
            RetryPolicy._check(attempt)
            return None
        return self.retry_policy.delay(attempt)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary for logs and the outbound record."""
        return {
            "code": self.code,
            "kind": type(self).__name__,
            "title": self.title,
            "message": self.message,
            "details": self.details,
            "fbtrace_id": self.fbtrace_id,
            "http_status": self.http_status,
            "retryable": self.retryable,
            "closes_window": self.closes_window,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), self.code, self.title, self.message, self.details, self.fbtrace_id,
             self.http_status, self.href, self.error_type, self.error_subcode, self.raw),
        )


def _rebuild(cls: type[WhatsAppError], *args: Any) -> WhatsAppError:
    code, title, message, details, fbtrace_id, http_status, href, etype, subcode, raw = args
    return cls(
        code, title, message, details, fbtrace_id, http_status=http_status, href=href,
        error_type=etype, error_subcode=subcode, raw=raw,
    )


# -- the window
class WindowClosedError(WhatsAppError):
    """131047 (Cloud API) / 470 (On-Premises): more than 24 h since the client last wrote.

    Not retryable as is: send an approved template, or wait for the client.
    """

    codes = frozenset({131047, 470})
    default_title = "Re-engagement message"
    closes_window = True


# -- the recipient
class RecipientError(WhatsAppError):
    """The message cannot reach this recipient (reach them another way)."""

    codes = frozenset({131026, 131021, 130472})
    default_title = "Message undeliverable"


class BsuidRecipientError(RecipientError):
    """131062: this message cannot go to a business-scoped user id (authentication
    templates): only the client's phone number can receive it. Never retried.
    """

    codes = frozenset({131062})
    default_title = "Business-scoped User ID (BSUID) recipients are not supported for this message"


class MarketingOptOutError(WhatsAppError):
    """131050: the client stopped marketing messages from us. Never retry."""

    codes = frozenset({131050})
    default_title = "User has stopped marketing messages"


class EcosystemLimitError(WhatsAppError):
    """131049: Meta chose not to deliver (per-user marketing cap). Not before 24 h."""

    codes = frozenset({131049})
    default_title = "Message not delivered to maintain healthy ecosystem engagement"
    retryable = True
    retry_policy = ECOSYSTEM_POLICY


# -- rate limits
class RateLimitError(WhatsAppError):
    """A rate limit was hit; slow down."""

    codes = frozenset({131048})
    default_title = "Spam rate limit hit"
    # 131048 (spam rate limit: too many blocks/reports) is a quality problem, not a
    # transient one: retrying the same message automatically would make it worse.


class ThroughputLimitError(RateLimitError):
    """130429: messages per second per number exceeded. Back off exponentially."""

    codes = frozenset({130429})
    default_title = "Rate limit hit"
    retryable = True
    retry_policy = THROUGHPUT_POLICY


class PairRateLimitError(RateLimitError):
    """131056: too many messages to the same client in a short time; 4^n s backoff."""

    codes = frozenset({131056})
    default_title = "(Business Account, Consumer Account) pair rate limit hit"
    retryable = True
    retry_policy = PAIR_RATE_POLICY


class GraphRateLimitError(RateLimitError):
    """4 (app-level Graph limit), 80007 (WABA-level limit): retry later."""

    codes = frozenset({4, 80007})
    default_title = "API rate limit hit"
    retryable = True
    retry_policy = GRAPH_RATE_POLICY


# -- transient
class TransientError(WhatsAppError):
    """Temporary server-side problems: retry with backoff."""

    codes = frozenset({1, 2, 131000, 131016, 133004})
    default_title = "Temporary service error"
    retryable = True
    retry_policy = TRANSIENT_POLICY
    http_status_default = 500


class MaintenanceError(TransientError):
    """131057: the business account is in maintenance (about a minute)."""

    codes = frozenset({131057})
    default_title = "Account in maintenance mode"
    retry_policy = MAINTENANCE_POLICY


# -- the request itself
class NoResponseError(WhatsAppError):
    """Transport failure after the request may have reached the Graph API (read timeout,
    connection reset). Code -2 is ours, not Meta's. Never retried automatically: Meta has
    no idempotency key, so a retry could deliver the message twice.
    """

    default_title = "No answer from the Graph API"
    retryable = False
    http_status_default = None


class RequestError(WhatsAppError):
    """The request is malformed or unsupported: fix it, do not retry it."""

    codes = frozenset({100, 131008, 131009, 131051})
    default_title = "Invalid request"


class GraphVersionError(RequestError):
    """2500 (unknown path components: a Graph API version Meta does not serve), 2635 (a
    deprecated version): set ``WA_API_VERSION`` to a current one. Never retried.
    """

    codes = frozenset({2500, 2635})
    default_title = "Graph API version not served"


class MediaError(RequestError):
    """131052 (could not download the client's media), 131053 (could not upload ours)."""

    codes = frozenset({131052, 131053})
    default_title = "Media error"


class PaginationCursorError(RequestError):
    """131059: invalid pagination cursor on the template list; restart without it."""

    codes = frozenset({131059})
    default_title = "Invalid pagination cursor"
    retryable = True
    retry_policy = RESTART_POLICY


# -- templates (never retried as is: 132xxx)
class TemplateError(WhatsAppError):
    """The template or its parameters do not match what Meta approved. Never retried."""

    codes = frozenset({132000, 132001, 132005, 132007, 132012, 132018})
    default_title = "Template error"


class TemplatePausedError(TemplateError):
    """132015 (paused for low quality), 132016 (disabled): pick another template."""

    codes = frozenset({132015, 132016})
    default_title = "Template is paused or disabled"


class FlowError(TemplateError):
    """132068 (flow blocked), 132069 (flow throttled). Not retried by the dispatcher:
    the conversation decides when to offer the flow again.
    """

    codes = frozenset({132068, 132069})
    default_title = "Flow error"


# -- the account
class AccountError(WhatsAppError):
    """Account, registration, billing or policy problems: an operator must act."""

    codes = frozenset({131031, 131037, 131042, 131045, 133010, 130497, 368})
    default_title = "Business account problem"
    http_status_default = 403


class AuthError(AccountError):
    """0 (authentication failed), 190 (access token expired): renew the token."""

    codes = frozenset({0, 190})
    default_title = "Authentication failed"
    http_status_default = 401


class AccessError(AccountError):
    """131005, 3, 10, 200–299: permission or API-method problems."""

    codes = frozenset({131005, 3, 10, *range(200, 300)})
    default_title = "Permission denied"


class MarketingMessagesApiError(WhatsAppError):
    """Marketing Messages API: 131055, 134100 (non-marketing template), 134101 (template
    still syncing: retry within ~10 min), 134102 (API unavailable for this account).
    """

    codes = frozenset({131055, 134100, 134101, 134102})
    default_title = "Marketing Messages API error"

    def __init__(self, code: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(code, *args, **kwargs)
        if code == 134101:
            self.retryable = True
            self.retry_policy = SYNCING_POLICY


class UnknownWhatsAppError(WhatsAppError):
    """A code we do not know. Not retried, unless Meta answered with a 5xx HTTP status
    (server-side family), in which case transient backoff applies.
    """

    default_title = "Unknown WhatsApp error"
    http_status_default = None

    def __init__(self, code: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(code, *args, **kwargs)
        if self.http_status is not None and 500 <= self.http_status < 600:
            self.retryable = True
            self.retry_policy = TRANSIENT_POLICY


_FAMILIES: tuple[type[WhatsAppError], ...] = (
    WindowClosedError,
    RecipientError,
    BsuidRecipientError,
    MarketingOptOutError,
    EcosystemLimitError,
    RateLimitError,
    ThroughputLimitError,
    PairRateLimitError,
    GraphRateLimitError,
    TransientError,
    MaintenanceError,
    RequestError,
    GraphVersionError,
    MediaError,
    PaginationCursorError,
    TemplateError,
    TemplatePausedError,
    FlowError,
    AccountError,
    AuthError,
    AccessError,
    MarketingMessagesApiError,
)


def _build_table() -> dict[int, type[WhatsAppError]]:
    table: dict[int, type[WhatsAppError]] = {}
    for cls in _FAMILIES:
        for code in cls.__dict__.get("codes", frozenset()):
            if code in table:
                raise RuntimeError(f"code {code} mapped twice ({table[code]} and {cls})")
            table[code] = cls
    return table


#: Every known code → its class.
ERROR_CLASSES: dict[int, type[WhatsAppError]] = _build_table()
KNOWN_CODES: frozenset[int] = frozenset(ERROR_CLASSES)

#: Titles for codes whose family title is too generic (used when Meta sends none).
_TITLES: dict[int, str] = {
    470: "Message failed to send because you are outside the support window",
    131026: "Message undeliverable",
    131021: "Recipient cannot be sender",
    131062: "Business-scoped User ID (BSUID) recipients are not supported for this message",
    2500: "Unknown path components",
    2635: "You are calling a deprecated version of the Graph API",
    130472: "User's number is part of an experiment",
    131000: "Something went wrong",
    131016: "Service unavailable",
    133004: "Server temporarily unavailable",
    1: "API unknown",
    2: "API service",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131051: "Message type unknown",
    100: "Invalid parameter",
    131052: "Media download error",
    131053: "Media upload error",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template format character policy violated",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is Paused",
    132016: "Template is Disabled",
    132018: "There was an issue with the parameters in your template.",
    132068: "Flow is in blocked state",
    132069: "Flow is in throttled state",
    131005: "Access denied",
    131031: "Account has been locked",
    131037: "WhatsApp provided number needs display name approval before message can be sent",
    131042: "Business eligibility payment issue",
    131045: "Incorrect certificate",
    133010: "Phone number not registered",
    130497: "Business account is restricted from messaging users in this country",
    368: "Temporarily blocked for policies violations",
    0: "AuthException",
    190: "Invalid OAuth access token - Cannot parse access token",
    3: "API method",
    10: "Permission denied",
    4: "API too many calls",
    80007: "Rate limit issues",
    131057: "Account in maintenance mode",
}


def error_class_for(code: int) -> type[WhatsAppError]:
    """The class for ``code`` (:class:`UnknownWhatsAppError` if unknown)."""
    return ERROR_CLASSES.get(code, UnknownWhatsAppError)


#: HTTP statuses that differ from their family's default (reference table §3.2).
_HTTP_STATUS: dict[int, int] = {132001: 404, 133010: 400, 131016: 500, 133004: 503}


def http_status_for(code: int) -> int | None:
    """The HTTP status Meta answers a synchronous ``code`` with."""
    return _HTTP_STATUS.get(code, error_class_for(code).http_status_default)


def title_for(code: int) -> str:
    """Meta's title for ``code`` (the family's title when Meta's is not recorded)."""
    return _TITLES.get(code) or error_class_for(code).default_title


def make_error(
    code: int,
    title: str | None = None,
    message: str | None = None,
    details: str | None = None,
    fbtrace_id: str | None = None,
    **kwargs: Any,
) -> WhatsAppError:
    """Build the typed error for ``code``."""
    cls = error_class_for(code)
    if kwargs.get("http_status") is None:
        kwargs["http_status"] = http_status_for(code)
    return cls(code, title or _TITLES.get(code), message, details, fbtrace_id, **kwargs)


# --------------------------------------------------------------------------- parsing

_UNPARSEABLE_CODE = -1
_MESSAGE_CODE = re.compile(r"^\(#(\d+)\)\s*")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _details(error: Mapping[str, Any]) -> str | None:
    data = error.get("error_data")
    if isinstance(data, Mapping):
        return _as_str(data.get("details"))
    if isinstance(data, str):
        return data
    return _as_str(error.get("details"))


def from_graph_error(payload: Any, http_status: int | None = None) -> WhatsAppError:
    """Parse a synchronous Graph API error body (``{"error": {...}}`` or the inner dict).

    Never raises: malformed bodies give an :class:`UnknownWhatsAppError` with code -1.
    """
    error: Any = payload.get("error", payload) if isinstance(payload, Mapping) else None
    if not isinstance(error, Mapping):
        return UnknownWhatsAppError(
            _UNPARSEABLE_CODE,
            "Unparseable Graph error",
            details=str(payload)[:500] if payload is not None else None,
            http_status=http_status,
        )
    message = _as_str(error.get("message"))
    code = _as_int(error.get("code"))
    if code is None and message:
        match = _MESSAGE_CODE.match(message)
        if match:
            code = int(match.group(1))
    title: str | None = _as_str(error.get("title"))
    if title is None and message:
        title = _MESSAGE_CODE.sub("", message) or None
    return make_error(
        code if code is not None else _UNPARSEABLE_CODE,
        title,
        message,
        _details(error),
        _as_str(error.get("fbtrace_id")),
        http_status=http_status,
        href=_as_str(error.get("href")),
        error_type=_as_str(error.get("type")),
        error_subcode=_as_int(error.get("error_subcode")),
        raw=error,
    )


def from_status_error(error: Any) -> WhatsAppError:
    """Parse one ``statuses[].errors[]`` (or ``messages[].errors[]``) element.

    Never raises: malformed elements give an :class:`UnknownWhatsAppError` (code -1).
    """
    if not isinstance(error, Mapping):
        return UnknownWhatsAppError(_UNPARSEABLE_CODE, "Unparseable status error")
    code = _as_int(error.get("code"))
    return make_error(
        code if code is not None else _UNPARSEABLE_CODE,
        _as_str(error.get("title")),
        _as_str(error.get("message")),
        _details(error),
        _as_str(error.get("fbtrace_id")),
        href=_as_str(error.get("href")),
        raw=error,
        http_status=None,
    )


def errors_from_status(status: Any) -> list[WhatsAppError]:
    """All errors of one ``statuses[]`` element (Cloud API or the flat On-Prem shape)."""
    if not isinstance(status, Mapping):
        return []
    errors = status.get("errors")
    if not isinstance(errors, list):
        return []
    return [from_status_error(item) for item in errors]


def errors_from_webhook(payload: Any) -> Iterator[tuple[Mapping[str, Any], WhatsAppError]]:
    """Yield ``(status, error)`` for every failed status in a webhook payload.

    Handles the Cloud API envelope (``entry[].changes[].value.statuses[]``), a bare
    ``value``, and a single flat status (the legacy On-Premises shape).
    """
    if not isinstance(payload, Mapping):
        return
    if "entry" in payload:
        for entry in payload.get("entry") or []:
            if not isinstance(entry, Mapping):
                continue
            for change in entry.get("changes") or []:
                if isinstance(change, Mapping):
                    yield from errors_from_webhook(change.get("value"))
        return
    if "statuses" in payload:
        for status in payload.get("statuses") or []:
            for error in errors_from_status(status):
                yield status, error
        return
    if "errors" in payload and "status" in payload:
        for error in errors_from_status(payload):
            yield payload, error
