"""What the emulator answers for a Graph API version.

Meta's calendar is :mod:`salon.whatsapp.versions` (v27.0 current since 2026-11-04, v26.0,
v25.0, and v21.0, served only until 2027-01-21). The emulator serves the versions the
project claims (:data:`DEFAULT_API_VERSIONS`, or ``api_versions``) and refuses one from its
``ends`` instant (00:00 UTC that day) on, on the emulator's clock.

Refusals, as Meta answers them (HTTP 400, ``OAuthException`` envelope, no WhatsApp
``error_data``):

- a version the emulator does not serve (never released, or not one the project claims):
  code **2500**, ``"Unknown path components: /<path>"`` — what graph.facebook.com answers
  for a path whose version segment it does not know (e.g. ``v2.80``);
- a claimed version past its end date: code **2635**, ``"(#2635) You are calling a
  deprecated version of the Graph API. Please update to the latest version: v27.0."`` —
  the code Meta uses for calls to a deprecated API version. (Meta's versioning page says
  calls to an expired Graph API version are *defaulted to the oldest usable version*
  instead; the emulator refuses them on purpose, so a project still pinned to a dead
  version finds out in tests, not in production.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from salon.emulator.graph_errors import GraphError
from salon.whatsapp.versions import (
    DEFAULT_API_VERSION,
    GRAPH_API_VERSIONS,
    VERSION_PATTERN,
    GraphVersion,
    latest_version,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_API_VERSIONS",
    "GRAPH_API_VERSIONS",
    "VERSION_PATTERN",
    "GraphVersion",
    "check_version",
    "latest_version",
]

#: The versions the project claims, which the emulator serves by default.
DEFAULT_API_VERSIONS: Final[tuple[str, ...]] = ("v21.0", "v25.0", "v26.0", "v27.0")


def check_version(version: str, accepted: Iterable[str], now: datetime, path: str) -> None:
    """Raise the :class:`GraphError` Meta answers for ``version`` at ``now`` (``path``: the
    request path, echoed as Meta does); return when the version is served.
    """
    accepted = tuple(accepted)
    known = GRAPH_API_VERSIONS.get(version)
    if version not in accepted:
        raise GraphError(
            2500,
            f"Unknown path components: {path}",
            http_status=400,
            message=f"Unknown path components: {path}",
        )
    if known is not None and not known.served_at(now):
        latest = latest_version(accepted)
        raise GraphError(
            2635,
            f"Graph API {version} reached its end of life on {known.ends:%Y-%m-%d}.",
            http_status=400,
            message=f"(#2635) You are calling a deprecated version of the Graph API. "
            f"Please update to the latest version: {latest}.",
        )
