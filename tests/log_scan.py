"""Scanning captured logs for personal data: the exact values a run used (numbers, BSUIDs,
emails, names, message bodies; numbers inside Meta's message ids too) and anything shaped
like a phone number, a BSUID or an email. A hit is reported with its line, the hit itself masked, so the failure output
does not leak what the logs did."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

__all__ = ["Leak", "Needles", "scan"]

# "+33 6 12 34 56 78", "+33612345678", "+1 (415) 555-0100"
_E164: Final = re.compile(r"(?<![\w+])\+\d(?:[\s\-().]{0,2}\d){7,16}(?!\d)")
# wa_ids and other bare runs of 8 to 15 digits; not part of a word, a longer number, a
# decimal fraction or a version
_DIGITS: Final = re.compile(r"(?<![\w.])(?<!\d\.)\d{8,15}(?![\w]|\.\d)")
_BSUID: Final = re.compile(r"\b[A-Z]{2}\.[A-Z0-9]{6,}(?:\.[A-Z0-9]+)*\b")
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Meta's message ids: base64 that holds the client's number
_WAMID: Final = re.compile(r"\bwamid\.([A-Za-z0-9+/=_\-]{6,})")


def _decoded(b64: str) -> str:
    raw = b64.rstrip("=")
    try:
        data = base64.b64decode(raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4))
    except (ValueError, binascii.Error):
        return ""
    return data.decode("latin-1")


@dataclass(frozen=True)
class Needles:
    """What the run used: each value is looked for as a whole word (case-sensitive)."""

    phones: Iterable[str] = ()
    bsuids: Iterable[str] = ()
    emails: Iterable[str] = ()
    names: Iterable[str] = ()
    bodies: Iterable[str] = ()
    allowed_numbers: Iterable[str] = ()
    """Digit runs that are not a person's (the business's phone number id, its WABA id)."""
    epoch_range: tuple[datetime, datetime] | None = None
    """Unix times (seconds, milliseconds) in this range are timestamps, not numbers."""

    def exact(self) -> list[tuple[str, re.Pattern[str]]]:
        out: list[tuple[str, re.Pattern[str]]] = []
        for kind, values in (("phone", self.phones), ("bsuid", self.bsuids), ("email", self.emails),
                             ("name", self.names), ("body", self.bodies)):
            for value in values:
                if not value:
                    continue
                if kind == "phone":
                    digits = re.sub(r"\D", "", value)
                    out.append((kind, re.compile(rf"(?<!\d){re.escape(digits)}(?!\d)")))
                    if digits != value:
                        out.append((kind, re.compile(re.escape(value))))
                    continue
                if kind == "bsuid":  # the id, and its digits alone
                    out.append((kind, re.compile(rf"(?<!\d){re.escape(value.split('.', 1)[-1])}(?!\d)")))
                out.append((kind, re.compile(rf"(?<!\w){re.escape(value)}(?!\w)")))
        return out


@dataclass(frozen=True)
class Leak:
    source: str
    line_no: int
    kind: str
    line: str
    """The line with every hit (the run's values, anything shaped like a number, a BSUID
    or an email) replaced by ``«kind»``."""

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.kind}: {self.line}"


def _is_timestamp(digits: str, epoch_range: tuple[datetime, datetime] | None) -> bool:
    if epoch_range is None or len(digits) not in (10, 13):
        return False
    seconds = int(digits) / (1000 if len(digits) == 13 else 1)
    try:
        when = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return False
    return epoch_range[0] <= when <= epoch_range[1]


def scan(sources: Mapping[str, str], needles: Needles) -> list[Leak]:
    """Every line of every source holding personal data."""
    exact = needles.exact()
    allowed = set(needles.allowed_numbers)
    hidden = [re.sub(r"\D", "", p) for p in needles.phones] + [b.split(".", 1)[-1] for b in needles.bsuids]
    leaks: list[Leak] = []
    for source, text in sources.items():
        for line_no, line in enumerate(text.splitlines(), start=1):
            spans: list[tuple[int, int, str]] = []
            for kind, pattern in exact:
                spans.extend((m.start(), m.end(), kind) for m in pattern.finditer(line))
            spans.extend((m.start(), m.end(), "phone-in-wamid") for m in _WAMID.finditer(line)
                         if any(value and value in _decoded(m.group(1)) for value in hidden))
            spans.extend((m.start(), m.end(), "email-like") for m in _EMAIL.finditer(line))
            spans.extend((m.start(), m.end(), "bsuid-like") for m in _BSUID.finditer(line))
            spans.extend((m.start(), m.end(), "phone-like") for m in _E164.finditer(line))
            spans.extend((m.start(), m.end(), "number-like") for m in _DIGITS.finditer(line)
                         if m.group(0) not in allowed and not _is_timestamp(m.group(0), needles.epoch_range))
            if not spans:
                continue
            merged: list[tuple[int, int, str]] = []
            for start, end, kind in sorted(spans):
                if merged and start < merged[-1][1]:  # overlapping hits are masked as one
                    merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
                else:
                    merged.append((start, end, kind))
            masked = line
            for start, end, kind in reversed(merged):
                masked = masked[:start] + f"«{kind}»" + masked[end:]
            kinds = sorted({kind for _, _, kind in spans})
            leaks.append(Leak(source, line_no, ",".join(kinds), masked[:400]))
    return leaks
