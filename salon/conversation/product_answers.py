"""Product answers in the maison's voice, composed only from catalog facts.

Every figure in an answer (price, material, stock) comes from :class:`ProductFacts`;
when the data cannot answer, the answer says what the maison will do instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from salon.integrations.catalog import ProductFacts


def join_words(items: Sequence[str], conjunction: str = "and") -> str:
    """'Paris', 'London and Paris', 'London, Milan and Paris'."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _price(facts: ProductFacts) -> str:
    return f"€{facts.price_eur:,} (£{facts.price_gbp:,} in London)"


def availability_sentence(
    facts: ProductFacts, cities: Mapping[str, str], colour: str | None = None
) -> str:
    """Where the piece (in a colour, when asked) is on hand today."""
    units = facts.units_by_boutique(colour=colour)
    subject = f"The {facts.name}" + (f" in {join_words(facts.colours_matching(colour))}" if colour else "")
    in_stock = [boutique for boutique, count in sorted(units.items()) if count > 0]
    if not in_stock:
        everywhere = "our three boutiques" if len(cities) == 3 else "our boutiques"
        return f"{subject} is not available in {everywhere} at the moment."
    last_pieces = [cities.get(b, b) for b in in_stock if units[b] == 1]
    plenty = [cities.get(b, b) for b in in_stock if units[b] > 1]
    parts = []
    if plenty:
        parts.append(f"available in {join_words(plenty)}")
    if last_pieces:
        parts.append(f"down to its last piece in {join_words(last_pieces)}")
    return f"{subject} is {' and '.join(parts)}."


def product_answer(
    facts: ProductFacts, cities: Mapping[str, str], colour: str | None = None
) -> str:
    """A short answer about one product: availability, what it is made of, its price."""
    if colour and not facts.colours_matching(colour):
        return (
            f"The {facts.name} is made in {join_words(list(facts.colours))}, not in {colour}. "
            f"Would one of these tempt you?"
        )
    materials = join_words(list(facts.materials[:2]))
    availability = availability_sentence(facts, cities, colour)
    units = facts.units_by_boutique(colour=colour)
    if any(count > 0 for count in units.values()):
        follow_up = "Shall I ask a client advisor to set one aside for you?"
    else:
        follow_up = "Would you like me to let you know as soon as it returns?"
    return f"{availability} It is made of {materials}, at {_price(facts)}. {follow_up}"
