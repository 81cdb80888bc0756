"""Which catalog pieces a styling question is about: a ranking over the maison's products.

Each product becomes a weighted bag of words from its name (×3), category (×2, with the
words clients use for it), materials (×2), colours (with the colour words clients use,
from :data:`salon.integrations.catalog.COLOUR_FAMILIES`), description and craft. A
question is folded the same way and widened with a small vocabulary of how clients speak
(French and Italian garment words, "bag" for the bag shapes, occasions to the words the
catalog uses for them). Two scores are combined:

- Okapi BM25 over those word bags (term counts from scikit-learn's ``CountVectorizer``),
  which rewards rare, specific words (``clutch``, ``cashmere``) over common ones;
- the cosine of character 3–5-gram TF-IDF vectors of the raw question and the product's
  name, materials and colours, which forgives plurals, typos and accents
  (``cachemire`` / ``cashmere``).

A product the question names outright (``best_name_match``) always ranks first (just
above the next one, so scores stay comparable).

:meth:`CatalogIndex.rank_fitting` is the styling turn's ranking: the client's
constraints (:mod:`salon.llm.constraints`: budget, for whom, what she owns, the kind,
size and colour she asked for) are hard filters applied before anything is ranked, and
the words ranked are hers with place names, amounts, sizes and her own pieces taken out
(a "wedding in Capri" is no reason to rank the Capri linen shirt). When her words name
something the catalog knows, a fitting piece must share at least one of them: a piece
that fits the budget but is not what she asked for is not offered. :meth:`CatalogIndex.rank`
ranks the raw words over the whole catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from salon.integrations.catalog import COLOUR_FAMILIES, ProductFacts, best_name_match, fold
from salon.llm.constraints import Fit

__all__ = ["BASE_SCORE", "CatalogIndex", "KeywordOverlapIndex", "Ranked", "tokens"]

BASE_SCORE = 1e-6
"""What a fitting piece scores when the client's words leave nothing else to rank by."""

STOPWORDS = frozenset(
    """a an the and or of for to in on at with by from my me i i'm im you your we our it its is are
    be was were would could should can will do does did what which who how that this these those
    some any something anything go goes going wear wearing suit suits look looks like love need
    want please help pick choose ideas idea advice recommend suggest thanks thank hello there
    le la les un une des de du et ou pour avec sur dans mon ma mes votre vos je j me moi qu que
    quel quelle quels quelles est irait porter conseillez pouvez aider il elle ce cette
    per con di il la una uno cosa mi che un del della delle dei al alla nel nella su da mia mio
    vorrei cerco consigli consiglia indossare abbinare sarebbe""".split()
)

CATEGORY_WORDS: Mapping[str, str] = {
    "leather_goods": "leather goods bag accessory",
    "ready_to_wear": "ready to wear clothing outfit garment",
    "jewellery": "jewellery jewelry jewel",
    "watches": "watch timepiece",
    "fragrance": "fragrance perfume scent",
}

# How clients speak → the words the catalog uses. Each key is a folded query token.
EXPANSIONS: Mapping[str, str] = {
    # shapes and garments
    "bag": "tote clutch saddle bucket briefcase weekender mini",
    "bags": "bag tote clutch saddle bucket briefcase weekender mini",
    "handbag": "bag tote saddle bucket mini",
    "purse": "clutch wallet mini",
    "crossbody": "saddle strap across body",
    "suit": "blazer trousers",
    "jacket": "blazer jacket",
    "necklace": "necklace pendant chain",
    "gift": "gift",
    "present": "gift",
    "perfume": "fragrance perfume eau parfum",
    "scent": "fragrance eau parfum",
    "cologne": "cologne fragrance",
    "jeans": "denim",
    "laptop": "laptop briefcase tote",
    "travel": "travel weekender luggage gmt",
    "travelling": "travel weekender luggage gmt",
    "trip": "travel weekender luggage",
    "luggage": "weekender luggage travel",
    "earring": "earrings",
    "ring": "ring",
    "rings": "ring",
    "cardholder": "card holder",
    "cards": "card holder",
    # French
    "sac": "bag tote clutch saddle bucket",
    "robe": "dress gown",
    "montre": "watch",
    "bague": "ring",
    "collier": "necklace pendant",
    "boucles": "earrings",
    "oreilles": "earrings",
    "parfum": "fragrance perfume",
    "foulard": "scarf silk",
    "carre": "scarf silk",
    "manteau": "coat",
    "chemise": "shirt",
    "pantalon": "trousers",
    "veste": "jacket blazer",
    "ceinture": "belt",
    "portefeuille": "wallet",
    "pochette": "clutch",
    "cachemire": "cashmere",
    "soie": "silk",
    "lin": "linen",
    "cuir": "leather calfskin",
    "cadeau": "gift",
    "mariage": "wedding evening silk dress",
    "soiree": "evening",
    "diner": "dinner evening",
    "ete": "summer linen",
    "hiver": "winter warm cashmere",
    "froid": "warm cashmere winter",
    "plage": "summer linen",
    "voyage": "travel weekender luggage gmt",
    "voyager": "travel weekender luggage gmt",
    "voyages": "travel weekender luggage gmt",
    "bureau": "laptop briefcase tote",
    "travail": "laptop briefcase tote",
    # Italian
    "borsa": "bag tote clutch",
    "borse": "bag tote clutch",
    "vestito": "dress",
    "abito": "dress gown",
    "orologio": "watch",
    "anello": "ring",
    "collana": "necklace pendant",
    "orecchini": "earrings",
    "bracciale": "bracelet bangle",
    "ciondolo": "pendant",
    "profumo": "fragrance perfume",
    "sciarpa": "scarf silk",
    "cappotto": "coat",
    "camicia": "shirt",
    "pantaloni": "trousers",
    "giacca": "jacket blazer",
    "cintura": "belt",
    "portafoglio": "wallet",
    "portacarte": "card holder",
    "maglione": "sweater",
    "seta": "silk",
    "lino": "linen",
    "pelle": "leather calfskin",
    "gioielli": "jewellery",
    "gioiello": "jewellery",
    "regalo": "gift",
    "matrimonio": "wedding evening silk dress",
    "cerimonia": "evening",
    "serata": "evening",
    "cena": "dinner evening",
    "estate": "summer linen",
    "inverno": "winter",
    "freddo": "warm cashmere winter",
    "viaggio": "travel weekender luggage gmt",
    "viaggiare": "travel weekender luggage gmt",
    "lavoro": "laptop briefcase tote",
    "ufficio": "laptop briefcase tote",
    "elegante": "evening",
    "fresco": "cologne neroli bergamot",
    # occasions and seasons → what the descriptions say
    "wedding": "evening silk dress",
    "gala": "evening gown black tie clutch",
    "opera": "evening gown clutch",
    "cocktail": "evening clutch dress",
    "dinner": "evening dinner",
    "party": "evening clutch",
    "evening": "evening night",
    "night": "evening night",
    "black": "noir",
    "tie": "black tie",
    "summer": "summer linen",
    "beach": "summer linen",
    "riviera": "summer linen",
    "yacht": "summer linen",
    "winter": "winter warm cashmere",
    "cold": "warm cashmere winter",
    "ski": "warm cashmere winter",
    "countryside": "weekend",
    "office": "laptop briefcase blazer",
    "business": "briefcase laptop blazer",
    "meeting": "briefcase blazer",
    "interview": "blazer tailored",
    "work": "laptop briefcase tote",
    "wrist": "watch bracelet bangle",
    "stack": "ring bracelet",
    "stacked": "ring bracelet",
    "woody": "woody oud cedar sandalwood",
    "floral": "floral tuberose jasmine",
    "fresh": "cologne neroli bergamot",
    "warm": "warm",
    "dressy": "evening",
    "elegant": "evening",
    "casual": "relaxed denim",
}

# Catalog colour names → the words clients use for them (navy for Bleu Nuit …).
_COLOUR_WORDS: dict[str, set[str]] = {}
for _word, _colours in COLOUR_FAMILIES.items():
    for _colour in _colours:
        _COLOUR_WORDS.setdefault(_colour, set()).add(_word)


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us")):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Folded, stop-word-free, lightly stemmed words of ``text``."""
    return [_stem(t) for t in fold(text).replace("/", " ").split() if t not in STOPWORDS and len(t) > 1]


def expand(query: str) -> list[str]:
    """The query's words plus the catalog's words for what the client means."""
    base = tokens(query)
    words = list(base)
    folded = fold(query).split()
    for word in folded:
        extra = EXPANSIONS.get(word) or EXPANSIONS.get(_stem(word))
        if extra:
            words.extend(tokens(extra))
    return words


def _colour_words(colour: str) -> str:
    folded = fold(colour)
    parts = {folded, *(fold(p) for p in colour.split("/"))}
    extra = set()
    for part in parts:
        extra |= _COLOUR_WORDS.get(part, set())
    return " ".join([colour, *sorted(extra)])


def product_document(product: ProductFacts) -> list[str]:
    """The weighted word bag of one product."""
    fields: list[tuple[str, int]] = [
        (product.name, 3),
        (CATEGORY_WORDS.get(product.category, product.category.replace("_", " ")), 2),
        (" ".join(product.materials), 2),
        (" ".join(_colour_words(c) for c in product.colours), 1),
        (product.description, 1),
        (product.craft, 1),
    ]
    words: list[str] = []
    for text, weight in fields:
        words.extend(tokens(text) * weight)
    return words


@dataclass(frozen=True, slots=True)
class Ranked:
    """A retrieved product and its score (higher is more relevant)."""

    product: ProductFacts
    score: float


def _identity(words: list[str]) -> list[str]:
    return words


class CatalogIndex:
    """BM25 over product word bags, blended with character n-gram similarity."""

    def __init__(self, products: Sequence[ProductFacts], *, k1: float = 1.2, b: float = 0.75,
                 char_weight: float = 0.35) -> None:
        if not products:
            raise ValueError("the catalog is empty: nothing to retrieve from")
        self.products = list(products)
        self.k1, self.b, self.char_weight = k1, b, char_weight
        self._words = CountVectorizer(analyzer=_identity, lowercase=False)
        counts = self._words.fit_transform([product_document(p) for p in self.products])
        self._counts = counts.tocsc().astype(np.float64)
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        self._norm = k1 * (1 - b + b * lengths / lengths.mean())
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        n = len(self.products)
        self._idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self._char_matrix = self._chars.fit_transform(
            [fold(f"{p.name} {' '.join(p.materials)} {' '.join(p.colours)}") for p in self.products]
        )
        self._by_id = {p.id: p for p in self.products}

    def product(self, product_id: str) -> ProductFacts | None:
        return self._by_id.get(product_id)

    def bm25(self, words: Iterable[str]) -> np.ndarray:
        scores = np.zeros(len(self.products))
        vocabulary = self._words.vocabulary_
        query_counts: dict[int, int] = {}
        for word in words:
            column = vocabulary.get(word)
            if column is not None:
                query_counts[column] = query_counts.get(column, 0) + 1
        for column, qtf in query_counts.items():
            tf = self._counts[:, column].toarray().ravel()
            weight = self._idf[column] * (1 + math.log(qtf))
            scores += weight * tf * (self.k1 + 1) / (tf + self._norm)
        return scores

    def _scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The blended score of every product, and its raw BM25 score."""
        raw = self.bm25(expand(query))
        top = raw.max()
        lexical = raw / top if top > 0 else raw
        chars = (self._char_matrix @ self._chars.transform([fold(query)]).T).toarray().ravel()
        return lexical + self.char_weight * chars, raw

    def knows_words(self, query: str) -> bool:
        """Whether ``query`` holds a word (or a client's word for one) of some product."""
        return bool(self.bm25(expand(query)).max() > 0)

    def rank(self, query: str, k: int = 5) -> list[Ranked]:
        """The ``k`` products the question is most about, best first (score > 0 only)."""
        return self._ranked(query, k, None)

    def rank_fitting(self, fit: Fit, k: int = 5) -> list[Ranked]:
        """The ``k`` products that respect every constraint of ``fit`` and are most about
        what the client asked (see the module's docstring), best first; empty when
        nothing fits. When she asked for a kind of piece, the kind is what makes a piece
        relevant; when her constraints leave no word to rank by ("a gift for my husband,
        under 800 euros"), every fitting piece is, in catalog order.
        """
        c = fit.constraints
        return self._ranked(c.query, k, fit.admits, floor=not c.kinds, base=BASE_SCORE if c.restricts else 0.0)

    def _ranked(self, query: str, k: int, admits: Callable[[ProductFacts], bool] | None, *,
                floor: bool = False, base: float = 0.0) -> list[Ranked]:
        scores, raw = self._scores(query)
        allowed = np.ones(len(self.products), dtype=bool)
        if admits is not None:
            allowed = np.array([admits(p) for p in self.products], dtype=bool)
            if floor and raw.max() > 0:
                allowed &= raw > 0
            scores = np.where(allowed, scores + base, 0.0)
        named = best_name_match(query, [(p.id, p.name) for p in self.products])
        if named is not None:
            position = self.products.index(self._by_id[named])
            if allowed[position]:
                scores[position] = max(scores[position], scores.max() + 0.01)
        order = np.argsort(-scores, kind="stable")
        return [Ranked(self.products[i], float(scores[i])) for i in order[:k] if scores[i] > 0 and allowed[i]]


class KeywordOverlapIndex:
    """The baseline: products ranked by how many of the question's words their text
    shares (name, category, materials, colours, description), no weighting.
    """

    def __init__(self, products: Sequence[ProductFacts]) -> None:
        self.products = list(products)
        self._texts = [
            set(fold(" ".join([p.name, p.category.replace("_", " "), *p.materials, *p.colours,
                               p.description])).split())
            for p in self.products
        ]

    def rank(self, query: str, k: int = 5) -> list[Ranked]:
        words = set(fold(query).split())
        scores = [len(words & text) for text in self._texts]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [Ranked(self.products[i], float(scores[i])) for i in order[:k] if scores[i] > 0]
