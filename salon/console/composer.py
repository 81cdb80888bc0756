"""What the advisor console's composer offers, as data: the page draws it.

Three things, each decided from the same pieces the send-time guard uses, so that what
the composer shows is what :class:`salon.guard.sender.GuardedSender` would send:

- :class:`ComposerMode`: free text while the client's window lets the guard send free-form
  (``free_text``, with when it closes), else ``templates``. A reply typed while the window
  is closed still goes through the guard, which parks it behind the re-engagement (nudge)
  template until she writes.
- :func:`template_options`: the templates this client can receive now, each rendered as
  WhatsApp shows it with her parameters filled. A name is offered in her language by the
  registry's one fallback rule (:meth:`TemplateRegistry.build_in_language`: her exact
  code, her base language, then the file's default; a translation that is not APPROVED
  or no longer matches Meta's, :attr:`Template.selectable`, is skipped at every step),
  with the language used and whether it fell back. A template is offered only when every
  parameter it requires can be filled and the client's consent allows its category (see
  :func:`consent_refusal`). The re-engagement templates (purposes ``reengage_*``) are
  listed too, flagged ``nudge``.
- :func:`voice_check`: gentle notes on a draft, in English, against the maison's voice
  (long messages, exclamation and emoji cascades, shouting, informal address in French or
  Italian, an empty message). Pure.

:func:`client_template_params` gathers one client's consent, template parameters and
language the way the guard does before a template send (the maison's book, else the
WhatsApp profile name, then what the caller adds); :meth:`TemplateOption.outgoing` is the
message that asks the guard for the offered template by name, so the advisor's choice
goes through the guard and never around it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import regex

from salon.clock import require_aware
from salon.consent.book import ConsentBook
from salon.guard.decision import Consent, template_refusal
from salon.identity import ClientRef
from salon.purposes import AUTHENTICATION, NUDGE_PURPOSE, SERVICE_REPLY
from salon.templates.model import normalise_language
from salon.templates.params import check_params
from salon.templates.registry import TemplateChoice, TemplateRegistry
from salon.whatsapp.messages import MAX_TEXT, OutgoingMessage, split_text
from salon.window.rules import DEFAULT_MARGIN, WindowState, window_state
from salon.window.state import SessionState

__all__ = [
    "FREE_TEXT",
    "LONG_MESSAGE",
    "TEMPLATES",
    "ClientTemplateParams",
    "ComposerMode",
    "TemplateOption",
    "client_template_params",
    "consent_refusal",
    "template_options",
    "voice_check",
]

FREE_TEXT: Final = "free_text"
TEMPLATES: Final = "templates"
LONG_MESSAGE: Final = 600
"""Past this many characters a message is long for a phone screen (a gentle note)."""
NUDGE_PURPOSES: Final = frozenset(NUDGE_PURPOSE.values())
UTTER_ACTION: Final = "advisor_template"
"""How an advisor's template send is named in the outbound record."""

ProfileName = Callable[[ClientRef], Awaitable[str | None]]


# --------------------------------------------------------------------------- mode


@dataclass(frozen=True, slots=True)
class ComposerMode:
    """Which composer the page shows for one client at one instant.

    ``free_text``: the guard sends a typed reply as it is until ``free_text_until`` (the
    window's close minus the guard's safety margin); ``closes_at`` is the window's close.
    ``templates``: the window is closed, closing within the margin, or she never wrote;
    only templates go out as they are, and a typed reply waits, parked, for her next
    message (behind one nudge template unless ``nudge_pending``: one already knocked).
    ``window_open`` is true while the window itself is open (the last minutes of the
    margin), when a utility template needs no prior opt-in.
    """

    mode: Literal["free_text", "templates"]
    reason: str
    """The window's reason (:mod:`salon.window.rules`: ``open``, ``closing``, ``expired``,
    ``closed_by_failure``, ``never_wrote``)."""
    closes_at: datetime | None
    free_text_until: datetime | None
    window_open: bool
    nudge_pending: bool = False

    @property
    def free_text(self) -> bool:
        return self.mode == FREE_TEXT

    @classmethod
    def of(cls, state: SessionState | None, now: datetime,
           margin: timedelta = DEFAULT_MARGIN) -> ComposerMode:
        """The mode for a client whose session state is ``state`` (None: she never
        wrote), decided as the guard decides free-form: ``state.window(now, margin)``.
        """
        require_aware(now, "now")
        if state is None:
            return cls.from_window(window_state(None, now, margin))
        return cls.from_window(state.window(now, margin), nudge_pending=state.nudge_pending)

    @classmethod
    def from_window(cls, window: WindowState, *, nudge_pending: bool = False) -> ComposerMode:
        """The mode for an already computed window."""
        return cls(
            mode=FREE_TEXT if window.can_send_free_form else TEMPLATES,
            reason=window.reason,
            closes_at=window.closes_at,
            free_text_until=window.free_form_until,
            window_open=window.is_open,
            nudge_pending=nudge_pending,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (datetimes as ISO strings)."""
        return {
            "mode": self.mode,
            "reason": self.reason,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "free_text_until": self.free_text_until.isoformat() if self.free_text_until else None,
            "window_open": self.window_open,
            "nudge_pending": self.nudge_pending,
        }


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class ClientTemplateParams:
    """What a template send to one client is decided with: her consent, the parameters
    at hand and her language (None: unknown, the registry's default is used).
    """

    consent: Consent
    params: dict[str, str]
    language: str | None


async def client_template_params(
    ref: ClientRef,
    *,
    consents: ConsentBook,
    profile_name: ProfileName,
    extra: Mapping[str, str] | None = None,
    language: str | None = None,
) -> ClientTemplateParams:
    """Gather one client's consent, template parameters and language as the guard does
    before it builds a template (``GuardedSender._context``): her entry in the maison's
    book (``consents.profile``) gives ``first_name`` and her language, else the first word
    of the name she gave WhatsApp (``profile_name``, the guard's own callback); her
    consent is ``consents.consent_for``. ``extra`` are the parameters the caller adds, as
    a sender's ``OutgoingMessage.params`` (the advisor's first name as ``advisor_name``,
    a boutique, a date): they win over the ones read here, as in the guard. ``language``
    overrides the book's, as ``OutgoingMessage.language`` does.

    Pass the guard's own ``consents`` and ``profile_name`` (``sender.consents``,
    ``sender.profile_name``) and send the option with the same ``extra``
    (:meth:`TemplateOption.outgoing` carries them), and the guard rebuilds exactly the
    template previewed.
    """
    profile = await consents.profile(ref)
    consent = await consents.consent_for(ref, profile)
    params: dict[str, str] = {}
    if profile is not None:
        params["first_name"] = profile.first_name
    else:
        name = await profile_name(ref)
        if name and name.split():
            params["first_name"] = name.split()[0]
    params.update(extra or {})
    chosen = language or (profile.language if profile is not None else None)
    return ClientTemplateParams(consent, params, chosen)


def consent_refusal(category: str, consent: Consent, *, window_open: bool = False) -> str | None:
    """Why this client may not be sent a template of ``category`` chosen by name, or None:
    the guard's own rule (:func:`salon.guard.decision.template_refusal`), for an advisor's
    reply.
    """
    return template_refusal(category, consent, window_open=window_open)


@dataclass(frozen=True, slots=True)
class TemplateOption:
    """One template the client can receive now, as WhatsApp will show it.

    ``language`` is the translation used, ``requested_language`` the client's (normalised;
    None when unknown); ``fell_back`` says they differ. ``header``, ``body`` and ``footer``
    are the texts with her parameters filled (a media header is None); ``buttons`` the
    button labels; ``params`` the values filled in (after the same clean-up the guard
    applies). ``nudge``: a re-engagement template, the one a reply typed while the window
    is closed waits behind.
    """

    name: str
    language: str
    requested_language: str | None
    fell_back: bool
    category: str
    header: str | None
    body: str
    footer: str | None
    buttons: tuple[str, ...]
    params: dict[str, str]
    purposes: tuple[str, ...]
    nudge: bool

    def outgoing(self) -> OutgoingMessage:
        """The message that asks the guard for this template by name (as
        ``{"wa_template": name, "wa_params": ...}`` does): the guard reads the window, the
        consent and the template's state again at its own moment, and sends, refuses or
        falls back as it decides then.
        """
        return OutgoingMessage(
            {"type": "template", "template": {"name": self.name}},
            purpose=self.purposes[0] if self.purposes else SERVICE_REPLY,
            utter_action=UTTER_ACTION,
            params=dict(self.params),
            template=self.name,
            language=self.requested_language,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "name": self.name, "language": self.language,
            "requested_language": self.requested_language, "fell_back": self.fell_back,
            "category": self.category, "header": self.header, "body": self.body,
            "footer": self.footer, "buttons": list(self.buttons), "params": dict(self.params),
            "purposes": list(self.purposes), "nudge": self.nudge,
        }


def template_options(
    registry: TemplateRegistry,
    *,
    language: str | None,
    consent: Consent,
    params: Mapping[str, str],
    now: datetime,
    window: WindowState | None = None,
) -> list[TemplateOption]:
    """The templates this client can receive now (see the module docstring), the
    ordinary ones first, then the nudges, each group by name.

    ``language``, ``consent`` and ``params`` come from :func:`client_template_params`;
    ``window`` is her window at ``now`` (None: closed). Lifecycle state is the
    registry's copy in hand: a caller with a shared registry awaits
    ``registry.refresh()`` first, as the guard does before each decision. Templates with
    no purpose (known only from Meta's listing) and authentication templates are never
    offered.
    """
    require_aware(now, "now")
    window_open = window is not None and window.is_open
    names = sorted({t.name for t in registry.all() if t.purposes})
    options: list[TemplateOption] = []
    for name in names:
        choice = registry.build_in_language(name, language, params)
        if not isinstance(choice, TemplateChoice):
            continue
        option = _option(choice, params, consent, now, window_open)
        if option is not None:
            options.append(option)
    options.sort(key=lambda o: (o.nudge, o.name))
    return options


def _option(choice: TemplateChoice, params: Mapping[str, str], consent: Consent, now: datetime,
            window_open: bool) -> TemplateOption | None:
    template = choice.template
    category = template.effective_category(now)
    if AUTHENTICATION in (category, template.category):
        return None
    # The guard judges the category it holds; one Meta announced and now due is judged
    # too, so a template becoming marketing is not offered without marketing consent.
    for judged in {template.category, category}:
        if consent_refusal(judged, consent, window_open=window_open) is not None:
            return None
    # The values the registry built the payload from (same check, same clean-up).
    _, values, _ = check_params(template, params, sanitize=True)
    buttons = tuple(button.text for comp in template.components for button in comp.buttons)
    return TemplateOption(
        name=template.name,
        language=choice.language,
        requested_language=choice.requested_language,
        fell_back=choice.fell_back,
        category=category,
        header=choice.rendered.get("header"),
        body=choice.rendered.get("body", ""),
        footer=choice.rendered.get("footer"),
        buttons=buttons,
        params=values,
        purposes=tuple(sorted(template.purposes)),
        nudge=bool(template.purposes & NUDGE_PURPOSES),
    )


# --------------------------------------------------------------------------- voice

_CASCADE = re.compile(r"[!?¡¿]\s*[!?]")
_EMOJI_CLUSTER = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Emoji_Presentation}|\p{Regional_Indicator}|\u20e3"
                       r"|\p{Extended_Pictographic}\ufe0f")
_APOLOGY = re.compile(
    r"\b(sorry|apolog\w*|regret\w*|désolée?s?|excuse[sz]?|navrée?s?|regrett\w*|"
    r"scus\w*|spiacent\w*|dispiac\w*|rammaric\w*)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_ELISION = re.compile(r"(?<![^\W\d_])t['’](?=[^\W\d_])", re.IGNORECASE)
_INFORMAL: Final[dict[str, frozenset[str]]] = {
    "fr": frozenset({"tu", "te", "toi", "ton", "ta", "tes", "salut", "coucou"}),
    "it": frozenset({
        "tu", "ti", "te", "tuo", "tua", "tuoi", "tue", "ciao",
        "dirti", "darti", "farti", "aiutarti", "scriverti", "vederti", "sentirti",
        "chiamarti", "ringraziarti", "contattarti", "ricontattarti", "informarti",
        "aggiornarti", "ricordarti", "mandarti", "inviarti", "mostrarti", "offrirti",
        "accoglierti", "augurarti", "proporti", "consigliarti", "riservarti", "avvisarti",
    }),
}
_COURTESY: Final[dict[str, str]] = {
    "fr": 'the maison writes "vous" in French',
    "it": "the maison writes the courtesy form in Italian (Lei, Suo, La)",
}
_LANGUAGE_NAME: Final[dict[str, str]] = {"fr": "French", "it": "Italian"}
MIN_SHOUT_LETTERS: Final = 8
SHOUT_SHARE: Final = 0.6
MANY_EXCLAMATIONS: Final = 3
MANY_EMOJI: Final = 3


def voice_check(text: str, language: str) -> list[str]:
    """Gentle notes, in English, on a draft to the client, against the maison's voice
    (warm, discreet, short; no exclamation or emoji cascades; the formal register in
    French and Italian). ``language`` is the client's (``fr``, ``it_IT`` …). An empty
    list: nothing to say.
    """
    draft = text.strip()
    if not draft:
        return ["The message is empty."]
    notes: list[str] = []
    notes += _length_notes(draft)
    notes += _shouting_notes(draft)
    notes += _exclamation_notes(draft)
    notes += _emoji_notes(draft)
    notes += _register_notes(draft, language)
    return notes


def _length_notes(draft: str) -> list[str]:
    size = len(draft)
    if size > MAX_TEXT:
        parts = len(split_text(draft, MAX_TEXT))
        return [f"Too long for one message: {size:,} characters, over WhatsApp's limit of "
                f"{MAX_TEXT:,}; it would arrive split in {parts} messages."]
    if size > LONG_MESSAGE:
        return [f"Long message ({size:,} characters): a shorter message reads better on a phone."]
    return []


def _shouting_notes(draft: str) -> list[str]:
    upper = sum(1 for ch in draft if ch.isupper())
    lower = sum(1 for ch in draft if ch.islower())
    cased = upper + lower
    if cased >= MIN_SHOUT_LETTERS and upper / cased >= SHOUT_SHARE:
        return ["Mostly capital letters: it reads as shouting; write in sentence case."]
    return []


def _exclamation_notes(draft: str) -> list[str]:
    cascade = _CASCADE.search(draft)
    if cascade is not None:
        return [f'Repeated punctuation ("{cascade.group(0)}"): one mark at most reads calmer.']
    count = draft.count("!")
    if count >= MANY_EXCLAMATIONS:
        return [f"{count} exclamation marks: the maison's voice is calm; keep one at most."]
    return []


def _emoji_notes(draft: str) -> list[str]:
    clusters = [m.group(0) for m in _EMOJI_CLUSTER.finditer(draft)]
    emoji = [i for i, cluster in enumerate(clusters) if _EMOJI.search(cluster)]
    notes: list[str] = []
    in_a_row = any(
        all(not clusters[k].strip() for k in range(a + 1, b)) for a, b in zip(emoji, emoji[1:], strict=False)
    )
    if in_a_row or len(emoji) >= MANY_EMOJI:
        notes.append(f"Emoji cascade ({len(emoji)} emoji): one at most, and only where it adds warmth.")
    if emoji and _APOLOGY.search(draft):
        notes.append("An emoji with an apology: leave it out when saying sorry or giving bad news.")
    return notes


def _register_notes(draft: str, language: str) -> list[str]:
    base = normalise_language(language or "").split("_", 1)[0]
    informal = _INFORMAL.get(base)
    if informal is None:
        return []
    found: list[str] = []
    if base == "fr" and _ELISION.search(draft):
        found.append("t'")
    for match in _WORD.finditer(draft):
        word = match.group(0).casefold()
        if word in informal and word not in found:
            found.append(word)
    if not found:
        return []
    quoted = ", ".join(f'"{word}"' for word in found[:4])
    return [f"Informal address in {_LANGUAGE_NAME[base]} ({quoted}): {_COURTESY[base]}."]
