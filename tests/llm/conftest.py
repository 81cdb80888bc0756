"""Fixtures shared by the styling tests: the demo maison's catalogue, read once."""

from __future__ import annotations

import asyncio

import pytest

from bench.retrieval import load_products
from salon.integrations.catalog import ProductFacts
from salon.llm.retrieval import CatalogIndex


@pytest.fixture(scope="module")
def catalog() -> list[ProductFacts]:
    return asyncio.run(load_products())


@pytest.fixture(scope="module")
def index(catalog: list[ProductFacts]) -> CatalogIndex:
    return CatalogIndex(catalog)
