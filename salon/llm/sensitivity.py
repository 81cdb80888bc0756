"""What a message is, before the styling responder answers it.

(Whether a person must answer it instead is :func:`salon.advisors.screen.person_needed`.)

- :func:`looks_like_injection`: text that tries to give the assistant instructions
  (ignore your rules, reveal the prompt, act as …). Such a message is answered by the
  offline responder; the model never sees it. Subtler attempts still reach the model as
  quoted data and meet the guardrails on the way out.
- :func:`is_styling_talk`: whether a message the NLU could not place is open styling talk
  (what to wear, pair or give, or one of the kinds of pieces the maison makes).
"""

from __future__ import annotations

import re
from typing import Final

from salon.integrations.catalog import fold

__all__ = ["is_styling_talk", "looks_like_injection"]


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)


_INJECTION: Final = _words(
    r"ignore (?:all |any |the |your )?(?:previous |prior |above |earlier )?(?:instructions|rules|prompt)",
    r"disregard (?:all |any |the |your )?(?:previous |prior |above )?(?:instructions|rules)",
    r"forget (?:all |your )?(?:previous )?(?:instructions|rules)",
    r"system prompt", r"developer mode", r"jailbreak", r"you are now", r"act as (?:an?|the) ",
    r"pretend (?:to be|you are)", r"new instructions", r"reveal (?:your|the) (?:prompt|instructions|rules)",
    r"print (?:your|the) (?:prompt|instructions)", r"repeat (?:everything|the text) above",
    r"other clients'? (?:data|numbers|phone|emails?|details)",
    r"ignore(?:z)? (?:toutes )?(?:les|vos|tes) (?:instructions|consignes|regles)",
    r"oublie(?:z)? (?:toutes )?(?:les|vos|tes) (?:instructions|consignes|regles)",
    r"(?:revele|revelez|affiche|affichez|montre|montrez)(?:-moi)? (?:ton|votre|le) (?:prompt|message systeme)",
    r"fais comme si tu etais", r"faites comme si vous etiez", r"prompt systeme", r"mode developpeur",
    r"ignora (?:tutte )?(?:le )?(?:tue |sue )?(?:istruzioni|regole)",
    r"dimentica (?:tutte )?(?:le )?(?:tue |sue )?(?:istruzioni|regole)",
    r"(?:mostra|rivela|stampa)(?:mi)? (?:il tuo |il suo |il )?prompt", r"prompt di sistema",
    r"fai finta di essere", r"modalita sviluppatore", r"nuove istruzioni",
    r"<\|?(?:system|im_start|im_end)\|?>", r"\[/?(?:inst|system)\]",
)

_STYLING: Final = _words(
    r"wear", r"outfit", r"look\b", r"style", r"styling", r"pair", r"match", r"go (?:well )?with",
    r"goes with", r"suit\b", r"occasion", r"wedding", r"gala", r"dinner", r"party", r"evening",
    r"gift", r"present\b", r"recommend", r"suggest", r"advice", r"ideas?\b", r"dress",
    r"porter", r"tenue", r"assortir", r"irait", r"cadeau", r"conseil", r"mariage", r"soiree",
    r"indossare", r"abbinare", r"regalo", r"vestire", r"consigli", r"cerimonia", r"matrimonio",
    r"serata", r"cena\b", r"occasione",
    # the pieces themselves
    r"bags?\b", r"tote", r"clutch", r"coat", r"gown", r"shirt", r"blazer", r"jacket", r"trousers",
    r"sweater", r"scarf", r"belt", r"wallet", r"necklace", r"rings?\b", r"earrings", r"bracelet",
    r"bangle", r"pendant", r"watch(?:es)?\b", r"perfume", r"fragrance", r"scent", r"cologne", r"jewel",
    r"sac\b", r"robe", r"montre", r"bague", r"collier", r"parfum", r"foulard", r"manteau", r"borsa",
    r"vestito", r"abito", r"giacca", r"cappotto", r"camicia", r"sciarpa", r"collana", r"anello",
    r"orecchini", r"bracciale", r"orologio", r"profumo", r"gioiell",
)


def looks_like_injection(text: str) -> bool:
    """Whether ``text`` is an obvious injection attempt: it asks to ignore, reveal or
    replace the instructions, or carries chat-template markers.
    """
    return bool(_INJECTION.search(text) or _INJECTION.search(fold(text)))


def is_styling_talk(text: str) -> bool:
    """Whether an unplaced message is about what to wear, pair, give or choose."""
    return bool(_STYLING.search(fold(text)))
