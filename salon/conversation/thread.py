"""Which piece a client means when she does not name it.

After the assistant suggested pieces, "the other one", "l'autre ?", "e l'altro?" or "the
second one" points at one of them: :func:`points_elsewhere` tells whether the words do,
:func:`the_other_piece` picks it (the next suggestion after the one just discussed, or
the one she numbered). The piece just discussed and the suggestions are the
conversation's (the ``product`` and ``suggested_pieces`` slots).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from salon.integrations.catalog import fold

__all__ = ["points_elsewhere", "the_other_piece"]

_OTHER: Final = re.compile(
    r"\b(?:the other(?: one)?|another one|l autre|l altro|l altra|quell altro|quell altra"
    r"|the (?:second|third) one|the (?:second|third)|(?:le|du) (?:deuxieme|second|troisieme)"
    r"|la (?:deuxieme|seconde|troisieme)|(?:il|del|al|sul|dal) (?:secondo|terzo)"
    r"|(?:la|della|alla|sulla|dalla) (?:seconda|terza))\b")
_ORDINALS: Final = {"second": 1, "deuxieme": 1, "seconde": 1, "secondo": 1, "seconda": 1,
                    "third": 2, "troisieme": 2, "terzo": 2, "terza": 2}


def points_elsewhere(text: str | None) -> bool:
    """Whether ``text`` points at another of the suggested pieces without naming it."""
    return bool(text) and _OTHER.search(fold(str(text))) is not None


def the_other_piece(text: str, suggested: Sequence[str], current: str | None) -> str | None:
    """The suggested piece ``text`` points at: the one she numbered ("the second one"),
    else the first suggestion that is not the piece just discussed; None without one.
    """
    words = fold(text).split()
    for word, index in _ORDINALS.items():
        if word in words and index < len(suggested):
            return suggested[index]
    others = [name for name in suggested if name != current]
    return others[0] if others else None
