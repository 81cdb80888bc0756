"""Cutting text where a reader sees a boundary: between grapheme clusters (an emoji
family, a letter with its stacked accents), never inside one. Lengths stay in code
points, as WhatsApp and the database columns count them.
"""

from __future__ import annotations

import regex

__all__ = ["cut", "shorten"]

_CLUSTER = regex.compile(r"\X")


def cut(text: str, limit: int) -> int:
    """The largest index ``<= limit`` at which ``text`` may be cut between two grapheme
    clusters; a single cluster longer than ``limit`` is cut at ``limit`` (nothing
    shorter exists).
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return len(text)
    end = 0
    for match in _CLUSTER.finditer(text, 0, len(text)):
        if match.end() > limit:
            break
        end = match.end()
    return end or limit


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` code points, between grapheme clusters."""
    return text[: cut(text, limit)]
