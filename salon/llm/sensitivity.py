"""What a message is, before anything answers it.

- :func:`handoff_reason`: messages a person must answer, never a model or a template:
  a complaint, distress or grief, a legal matter, a health question (allergies, skin,
  pregnancy), or something a VIC expects the maison to keep discreet (press, security,
  other clients, secrecy from a partner). English, French and Italian wording.
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

__all__ = ["HANDOFF_REASONS", "handoff_reason", "is_styling_talk", "looks_like_injection"]


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)


# Order matters: the first reason that matches is the one recorded.
_REASONS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("legal", _words(
        r"lawyers?\b", r"attorney", r"solicitor", r"sue\b", r"suing", r"lawsuit", r"legal action",
        r"court\b", r"tribunal", r"small claims", r"chargeback", r"trading standards", r"fraud",
        r"counterfeit", r"fake\b", r"avocat", r"plainte", r"proces\b", r"mise en demeure",
        r"gdpr", r"rgpd", r"data protection", r"delete my data", r"supprimer mes donnees",
        r"avvocato",
    )),
    ("medical", _words(
        r"allerg", r"eczema", r"dermatitis", r"rash\b", r"skin reaction", r"irritat", r"pregnan",
        r"enceinte", r"medication", r"medical", r"doctor", r"surgery", r"hospital", r"asthma",
        r"sensitive skin", r"peau sensible", r"medecin", r"incinta",
    )),
    ("complaint", _words(
        r"complain", r"complaint", r"unacceptable", r"disappoint", r"refund", r"rembours",
        r"furious", r"angry", r"rude", r"damaged", r"scratch", r"broken", r"never arrived",
        r"still not", r"worst", r"terrible", r"awful", r"inadmissible", r"inacceptable",
        r"decu", r"reclamation", r"mecontent", r"deluso", r"vergogna",
    )),
    ("emotional", _words(
        r"passed away", r"died\b", r"death\b", r"funeral", r"grief", r"grieving", r"mourning",
        r"late (?:husband|wife|mother|father|mum|mom|dad|son|daughter|partner)",
        r"heartbroken", r"devastated", r"depress", r"lonely", r"anxious", r"panic", r"crying",
        r"in tears", r"can ?no?t cope", r"divorce", r"cancer", r"so upset", r"upset",
        r"deces", r"obseques", r"effondre", r"en larmes", r"triste", r"lutto",
    )),
    ("vic_sensitive", _words(
        r"press\b", r"journalist", r"paparazz", r"photographers?", r"bodyguard", r"security team",
        r"stalk", r"threat", r"kidnap", r"my address", r"home address", r"who else (?:bought|has)",
        r"other clients?", r"which celebrit", r"celebrity", r"don'?t tell (?:my|anyone)",
        r"secret from", r"without my (?:wife|husband|partner) knowing", r"mistress", r"affair\b",
        r"confidential", r"journaliste", r"presse\b", r"ma femme ne doit pas", r"discretion absolue",
    )),
)

HANDOFF_REASONS: Final = tuple(reason for reason, _ in _REASONS)

_INJECTION: Final = _words(
    r"ignore (?:all |any |the |your )?(?:previous |prior |above |earlier )?(?:instructions|rules|prompt)",
    r"disregard (?:all |any |the |your )?(?:previous |prior |above )?(?:instructions|rules)",
    r"forget (?:all |your )?(?:previous )?(?:instructions|rules)",
    r"system prompt", r"developer mode", r"jailbreak", r"you are now", r"act as (?:an?|the) ",
    r"pretend (?:to be|you are)", r"new instructions", r"reveal (?:your|the) (?:prompt|instructions|rules)",
    r"print (?:your|the) (?:prompt|instructions)", r"repeat (?:everything|the text) above",
    r"other clients'? (?:data|numbers|phone|emails?|details)",
    r"ignore(?:z)? (?:les|vos|tes) (?:instructions|consignes|regles)",
    r"<\|?(?:system|im_start|im_end)\|?>", r"\[/?(?:inst|system)\]",
)

_STYLING: Final = _words(
    r"wear", r"outfit", r"look\b", r"style", r"styling", r"pair", r"match", r"go (?:well )?with",
    r"goes with", r"suit\b", r"occasion", r"wedding", r"gala", r"dinner", r"party", r"evening",
    r"gift", r"present\b", r"recommend", r"suggest", r"advice", r"ideas?\b", r"dress",
    r"porter", r"tenue", r"assortir", r"irait", r"cadeau", r"conseil", r"mariage", r"soiree",
    r"indossare", r"abbinare", r"regalo",
    # the pieces themselves
    r"bags?\b", r"tote", r"clutch", r"coat", r"gown", r"shirt", r"blazer", r"jacket", r"trousers",
    r"sweater", r"scarf", r"belt", r"wallet", r"necklace", r"rings?\b", r"earrings", r"bracelet",
    r"bangle", r"pendant", r"watch(?:es)?\b", r"perfume", r"fragrance", r"scent", r"cologne", r"jewel",
    r"sac\b", r"robe", r"montre", r"bague", r"collier", r"parfum", r"foulard", r"manteau", r"borsa",
)


def handoff_reason(text: str) -> str | None:
    """``legal``, ``medical``, ``complaint``, ``emotional`` or ``vic_sensitive`` when a
    person must answer this message; None when the assistant may.
    """
    folded = fold(text).replace("/", " ")
    raw = text.casefold()
    for reason, pattern in _REASONS:
        if pattern.search(folded) or pattern.search(raw):
            return reason
    return None


def looks_like_injection(text: str) -> bool:
    """Whether ``text`` is an obvious injection attempt: it asks to ignore, reveal or
    replace the instructions, or carries chat-template markers.
    """
    return bool(_INJECTION.search(text) or _INJECTION.search(fold(text)))


def is_styling_talk(text: str) -> bool:
    """Whether an unplaced message is about what to wear, pair, give or choose."""
    return bool(_STYLING.search(fold(text)))
