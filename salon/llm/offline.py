"""The offline responder: styling answers composed only from retrieved catalog facts.

It is the fallback's answer whenever no model is configured (the default, and ``make
demo``), when the client has not agreed to model-drafted replies, when the model fails or
runs out of time, and when a model's draft cannot be repaired. It is deterministic: the
same question, catalog and client give the same words. Each answer names at most two
retrieved pieces with a material and the price in the client's currency, says where the
first is on hand today, and offers the client's advisor by name. Nothing in it comes from
anywhere but the catalog and the client's record, so it passes the same guardrails as a
model's answer (a test holds it to that for every held-out question).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from salon.conversation.product_answers import availability_sentence
from salon.integrations.catalog import ProductFacts
from salon.llm.context import ClientContext
from salon.llm.retrieval import Ranked

__all__ = ["advisor_offer", "offline_answer", "safe_answer"]


def _price(product: ProductFacts, client: ClientContext) -> str:
    if client.currency == "GBP":
        return f"£{product.price_gbp:,}"
    return f"€{product.price_eur:,}"


def _piece(product: ProductFacts, client: ClientContext) -> str:
    material = product.materials[0] if product.materials else ""
    facts = ", ".join(part for part in (material, _price(product, client)) if part)
    return f"the {product.name} ({facts})"


def _chosen(ranked: Sequence[Ranked]) -> list[ProductFacts]:
    if not ranked:
        return []
    chosen = [ranked[0].product]
    if len(ranked) > 1 and ranked[1].score >= 0.5 * ranked[0].score:
        chosen.append(ranked[1].product)
    return chosen


def advisor_offer(client: ClientContext, plural: bool = False) -> str:
    """The closing question: shall their advisor (by first name when known) set the piece,
    or pieces, aside or arrange a fitting?
    """
    them = "them" if plural else "it"
    if client.advisor_first_name:
        return f"Shall I ask {client.advisor_first_name}, your client advisor, to set {them} aside for you or arrange a fitting?"
    return f"Shall I ask a client advisor to set {them} aside for you or arrange a fitting?"


def _opening(client: ClientContext) -> str:
    return f"With pleasure, {client.salutation}." if client.salutation else "With pleasure."


def offline_answer(
    ranked: Sequence[Ranked], client: ClientContext, cities: Mapping[str, str]
) -> tuple[str, list[str]] | None:
    """The answer and the ids of the pieces it names, or None when nothing was retrieved."""
    chosen = _chosen(ranked)
    if not chosen:
        return None
    pieces = " and ".join(_piece(p, client) for p in chosen)
    text = (
        f"{_opening(client)} I would suggest {pieces}. "
        f"{availability_sentence(chosen[0], cities)} {advisor_offer(client, plural=len(chosen) > 1)}"
    )
    return text, [p.id for p in chosen]


def safe_answer(
    ranked: Sequence[Ranked], client: ClientContext, cities: Mapping[str, str]
) -> tuple[str, list[str]]:
    """What goes out when a model's draft could not be made right: the grounded offline
    answer, or, with nothing retrieved, the advisor alone.
    """
    grounded = offline_answer(ranked, client, cities)
    if grounded is not None:
        return grounded
    who = f"{client.advisor_first_name}, your client advisor," if client.advisor_first_name else "a client advisor"
    return (f"{_opening(client)} I would rather {who} answer this personally. "
            "Shall I pass your message on?"), []
