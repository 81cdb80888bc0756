"""Bearer tokens and scopes (salon/access/tokens.py)."""

from __future__ import annotations

import hashlib
import json

import pytest

from salon.access.tokens import Forbidden, TokenBook, TokenConfigError, Unauthorized

SOPHIE = "sophie-token-0123456789"
MARC = "marc-token-0123456789ab"
OPS = "ops-token-0123456789abcd"
CRM = "crm-token-0123456789abcd"


@pytest.fixture()
def book() -> TokenBook:
    return TokenBook.from_env(
        {
            "SALON_API_TOKENS": json.dumps(
                [
                    {"name": "sophie", "token": SOPHIE, "scopes": ["advisor"], "advisor_id": "ADV-1"},
                    {"name": "marc", "token": MARC, "scopes": ["advisor"], "advisor_id": "ADV-2"},
                    {"name": "ops", "sha256": hashlib.sha256(OPS.encode()).hexdigest(),
                     "scopes": ["manager", "gdpr"]},
                    {"name": "crm", "token": CRM, "scopes": ["outbound"]},
                ]
            )
        }
    )


def test_known_tokens_map_to_their_principals(book: TokenBook) -> None:
    sophie = book.authenticate(f"Bearer {SOPHIE}")
    assert (sophie.name, sophie.advisor_id, sophie.scopes) == ("sophie", "ADV-1", frozenset({"advisor"}))
    assert book.authenticate(f"bearer   {OPS}  ").name == "ops"  # scheme is case-insensitive


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", f"Basic {SOPHIE}", SOPHIE, "Bearer not-a-known-token-at-all"],
)
def test_missing_malformed_or_unknown_tokens_are_401(book: TokenBook, header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        book.authenticate(header)
    assert caught.value.status == 401


def test_a_known_token_without_the_scope_is_403(book: TokenBook) -> None:
    with pytest.raises(Forbidden) as caught:
        book.check(f"Bearer {CRM}", "advisor")
    assert caught.value.status == 403
    assert book.check(f"Bearer {CRM}", "outbound").name == "crm"
    # A manager holds the advisor scope as well.
    assert book.check(f"Bearer {OPS}", "advisor").name == "ops"


def test_advisors_see_only_their_own_clients_managers_see_all(book: TokenBook) -> None:
    sophie = book.authenticate(f"Bearer {SOPHIE}")
    marc = book.authenticate(f"Bearer {MARC}")
    ops = book.authenticate(f"Bearer {OPS}")
    crm = book.authenticate(f"Bearer {CRM}")
    assert sophie.may_see_advisor("ADV-1") and not sophie.may_see_advisor("ADV-2")
    assert marc.may_see_advisor("ADV-2") and not marc.may_see_advisor("ADV-1")
    assert not sophie.may_see_advisor(None)
    assert ops.may_see_advisor("ADV-1") and ops.may_see_advisor(None)
    assert not crm.may_see_advisor("ADV-1")


def test_unset_environment_accepts_no_token() -> None:
    book = TokenBook.from_env({})
    assert len(book) == 0
    with pytest.raises(Unauthorized):
        book.authenticate(f"Bearer {SOPHIE}")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("not json", "not JSON"),
        ('{"name": "x"}', "JSON list"),
        ('[{"token": "0123456789abcdef0", "scopes": ["outbound"]}]', "no name"),
        ('[{"name": "x", "token": "short", "scopes": ["outbound"]}]', "at least"),
        ('[{"name": "x", "token": "0123456789abcdef0", "scopes": ["root"]}]', "unknown scopes"),
        ('[{"name": "x", "token": "0123456789abcdef0", "scopes": []}]', "non-empty"),
        ('[{"name": "x", "token": "0123456789abcdef0", "scopes": ["advisor"]}]', "advisor_id"),
        ('[{"name": "x", "scopes": ["outbound"]}]', "exactly one"),
        ('[{"name": "x", "sha256": "zz", "scopes": ["outbound"]}]', "not hex"),
        ('[{"name": "x", "token": "0123456789abcdef0", "scopes": ["outbound"]},'
         ' {"name": "x", "token": "0123456789abcdef1", "scopes": ["outbound"]}]', "unique"),
        ('[{"name": "x", "token": "0123456789abcdef0", "scopes": ["outbound"]},'
         ' {"name": "y", "token": "0123456789abcdef0", "scopes": ["outbound"]}]', "share one token"),
    ],
)
def test_bad_configuration_is_refused_with_a_reason(config: str, message: str) -> None:
    with pytest.raises(TokenConfigError, match=message):
        TokenBook.from_env({"SALON_API_TOKENS": config})
