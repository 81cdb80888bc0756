"""Settings of the WhatsApp Cloud API emulator.

Every field has a default; each one can be overridden by an environment variable of the
name given in :data:`ENV_VARS` and by the command-line flag of the same name in kebab
case (``webhook_url`` → ``--webhook-url``). Precedence: explicit argument / CLI flag >
environment > default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from salon.emulator.versions import DEFAULT_API_VERSION, DEFAULT_API_VERSIONS, VERSION_PATTERN

__all__ = [
    "DEFAULT_WEBHOOK_URL",
    "ENV_VARS",
    "EmulatorConfig",
    "add_cli_arguments",
    "config_from_cli",
]

DEFAULT_WEBHOOK_URL: Final = "http://127.0.0.1:5005/webhooks/whatsapp/webhook"

_OFF: Final = frozenset({"", "off", "none", "no", "false", "disabled"})
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulated WhatsApp Business Account looks like and how it behaves.

    Durations named ``*_delay``/``*_window``/``*_timeout`` are wall-clock seconds (they
    pace the emulator's own work); the Meta rules (24 h window, pair rate) follow the
    emulator's clock, which can be moved with ``POST /_emulator/clock``.
    """

    phone_number_id: str = "100000000000001"
    waba_id: str = "200000000000001"
    display_phone_number: str = "33100000000"
    verified_name: str = "Maison Solenne"
    #: The emulator's own Graph API version (its ``graph_url``); must be one it serves.
    api_version: str = DEFAULT_API_VERSION
    #: The versions the Graph API routes serve (the ones the project claims); each one is
    #: refused after its end date in :data:`salon.emulator.versions.GRAPH_API_VERSIONS`.
    #: Environment / CLI: comma-separated.
    api_versions: tuple[str, ...] = DEFAULT_API_VERSIONS
    access_token: str = "emulator-access-token"
    app_secret: str = "emulator-app-secret"
    verify_token: str = "emulator-verify-token"
    webhook_url: str = DEFAULT_WEBHOOK_URL
    clock_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 5900
    #: Public base URL (media download links, paging ``next``); derived from the request
    #: when unset.
    base_url: str | None = None
    templates_file: str | None = None
    # status webhooks, seconds after the send was accepted (``read`` None = never read)
    status_sent_delay: float = 0.05
    status_delivered_delay: float = 0.1
    status_read_delay: float | None = 0.3
    # sending limits (platform reference §5)
    throughput_per_second: float = 80.0
    pair_rate_burst: int = 45
    pair_rate_refill_seconds: float = 6.0
    # webhook delivery
    webhook_attempts: int = 5
    webhook_retry_base_delay: float = 0.5
    webhook_retry_max_delay: float = 30.0
    webhook_timeout: float = 10.0
    batching: bool = False
    batch_window: float = 0.05
    batch_max: int = 50
    #: Meta does not say whether a reaction refreshes the window (platform reference
    #: §1.1); the emulator does not count it unless told to.
    reaction_opens_window: bool = False
    #: Include ``url`` in inbound media objects (Meta does since 2025-10-16).
    inbound_media_url: bool = True
    #: Per-user marketing cap (131049): hours after a counted marketing template during
    #: which another one outside the client's window fails; None turns the cap off.
    marketing_cap_hours: float | None = 24.0

    def __post_init__(self) -> None:
        if isinstance(self.api_versions, str):
            object.__setattr__(self, "api_versions", _versions(self.api_versions))
        else:
            object.__setattr__(self, "api_versions", tuple(self.api_versions))
        for version in (self.api_version, *self.api_versions):
            if not VERSION_PATTERN.match(version):
                raise ValueError(f"API versions must look like v27.0, got {version!r}")
        if not self.api_versions:
            raise ValueError("api_versions must name at least one version")
        if self.api_version not in self.api_versions:
            raise ValueError(
                f"api_version {self.api_version!r} is not among the served api_versions "
                f"{list(self.api_versions)}"
            )
        if self.marketing_cap_hours is not None and self.marketing_cap_hours < 0:
            raise ValueError("marketing_cap_hours must be >= 0 or None")
        for name in (
            "status_sent_delay",
            "status_delivered_delay",
            "batch_window",
            "webhook_retry_base_delay",
            "webhook_retry_max_delay",
            "webhook_timeout",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.status_read_delay is not None and self.status_read_delay < 0:
            raise ValueError("status_read_delay must be >= 0 or None")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be >= 1")
        if self.throughput_per_second <= 0 or self.pair_rate_burst < 1:
            raise ValueError("throughput_per_second and pair_rate_burst must be positive")
        if self.pair_rate_refill_seconds <= 0:
            raise ValueError("pair_rate_refill_seconds must be positive")
        if self.batch_max < 1:
            raise ValueError("batch_max must be >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EmulatorConfig:
        """Defaults, then environment variables (:data:`ENV_VARS`), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = ENV_VARS[f.name]
            if var in env:
                values[f.name] = _parse(f.name, env[var])
        values.update(overrides)
        return cls(**values)

    def with_changes(self, **changes: Any) -> EmulatorConfig:
        return replace(self, **changes)

    @property
    def templates_path(self) -> Path | None:
        return Path(self.templates_file) if self.templates_file else None

    def public(self, base_url: str | None = None) -> dict[str, Any]:
        """The ``GET /_emulator/config`` view."""
        return {
            "phone_number_id": self.phone_number_id,
            "waba_id": self.waba_id,
            "display_phone_number": self.display_phone_number,
            "api_version": self.api_version,
            "api_versions": list(self.api_versions),
            "access_token": self.access_token,
            "app_secret": self.app_secret,
            "verify_token": self.verify_token,
            "webhook_url": self.webhook_url,
            "base_url": self.base_url or base_url,
            "clock_file": self.clock_file,
            "batching": self.batching,
            "marketing_cap_hours": self.marketing_cap_hours,
            "status_delays": {
                "sent": self.status_sent_delay,
                "delivered": self.status_delivered_delay,
                "read": self.status_read_delay,
            },
        }


#: Environment variable of each field.
ENV_VARS: Final[dict[str, str]] = {
    "phone_number_id": "WA_PHONE_NUMBER_ID",
    "waba_id": "WA_WABA_ID",
    "display_phone_number": "WA_DISPLAY_PHONE_NUMBER",
    "verified_name": "WA_VERIFIED_NAME",
    "api_version": "WA_API_VERSION",
    "api_versions": "WA_EMULATOR_API_VERSIONS",
    "access_token": "WA_ACCESS_TOKEN",
    "app_secret": "WA_APP_SECRET",
    "verify_token": "WA_VERIFY_TOKEN",
    "webhook_url": "WA_WEBHOOK_URL",
    "clock_file": "SALON_CLOCK_FILE",
    "host": "WA_EMULATOR_HOST",
    "port": "WA_EMULATOR_PORT",
    "base_url": "WA_EMULATOR_BASE_URL",
    "templates_file": "WA_TEMPLATES_FILE",
    "status_sent_delay": "WA_STATUS_SENT_DELAY",
    "status_delivered_delay": "WA_STATUS_DELIVERED_DELAY",
    "status_read_delay": "WA_STATUS_READ_DELAY",
    "throughput_per_second": "WA_THROUGHPUT_PER_SECOND",
    "pair_rate_burst": "WA_PAIR_RATE_BURST",
    "pair_rate_refill_seconds": "WA_PAIR_RATE_REFILL_SECONDS",
    "webhook_attempts": "WA_WEBHOOK_ATTEMPTS",
    "webhook_retry_base_delay": "WA_WEBHOOK_RETRY_BASE_DELAY",
    "webhook_retry_max_delay": "WA_WEBHOOK_RETRY_MAX_DELAY",
    "webhook_timeout": "WA_WEBHOOK_TIMEOUT",
    "batching": "WA_WEBHOOK_BATCHING",
    "batch_window": "WA_WEBHOOK_BATCH_WINDOW",
    "batch_max": "WA_WEBHOOK_BATCH_MAX",
    "reaction_opens_window": "WA_REACTION_OPENS_WINDOW",
    "inbound_media_url": "WA_INBOUND_MEDIA_URL",
    "marketing_cap_hours": "WA_MARKETING_CAP_HOURS",
}

_INT: Final = frozenset({"port", "pair_rate_burst", "webhook_attempts", "batch_max"})
_FLOAT: Final = frozenset(
    {
        "status_sent_delay",
        "status_delivered_delay",
        "throughput_per_second",
        "pair_rate_refill_seconds",
        "webhook_retry_base_delay",
        "webhook_retry_max_delay",
        "webhook_timeout",
        "batch_window",
    }
)
_OPTIONAL_FLOAT: Final = frozenset({"status_read_delay", "marketing_cap_hours"})
_TUPLE: Final = frozenset({"api_versions"})
_BOOL: Final = frozenset({"batching", "reaction_opens_window", "inbound_media_url"})
_OPTIONAL_STR: Final = frozenset({"clock_file", "base_url", "templates_file"})


def _versions(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


def _parse(name: str, raw: str) -> Any:
    text = raw.strip()
    if name in _TUPLE:
        return _versions(text)
    if name in _INT:
        return int(text)
    if name in _FLOAT:
        return float(text)
    if name in _OPTIONAL_FLOAT:
        return None if text.lower() in _OFF else float(text)
    if name in _BOOL:
        return text.lower() in _TRUE
    if name in _OPTIONAL_STR:
        return text or None
    return text


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field (``--webhook-url``, ``--clock-file``, ``--batching`` …)."""
    for f in fields(EmulatorConfig):
        help_text = f"(env {ENV_VARS[f.name]}; default {f.default!r})"
        if f.name in _BOOL:
            parser.add_argument(
                _flag(f.name),
                dest=f.name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            parser.add_argument(_flag(f.name), dest=f.name, default=None, help=help_text)


def config_from_cli(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> EmulatorConfig:
    """Parse ``argv`` (flags win over the environment)."""
    parser = argparse.ArgumentParser(
        prog="python -m salon.emulator",
        description="Local stand-in for the WhatsApp Cloud API (Graph API subset, "
        "signed webhooks, admin API under /_emulator/).",
    )
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for f in fields(EmulatorConfig):
        value = getattr(args, f.name)
        if value is None:
            continue
        overrides[f.name] = value if f.name in _BOOL else _parse(f.name, value)
    return EmulatorConfig.from_env(environ, **overrides)
