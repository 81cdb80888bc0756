"""A local stand-in for the WhatsApp Cloud API, behaving like Meta does (platform
reference ``shared/reference/whatsapp-platform.md`` and its 2026 update
``whatsapp-2026.md``): the Graph API subset the bot uses,
signed webhooks to the bot, and an admin API under ``/_emulator/`` to play the client,
move time and inspect what the business sent.

Modules: :mod:`~salon.emulator.config` (settings), :mod:`~salon.emulator.rules` (pure
Meta rules), :mod:`~salon.emulator.payloads` (webhook bodies),
:mod:`~salon.emulator.delivery` (signed delivery, retries, batching),
:mod:`~salon.emulator.service` (the :class:`Emulator`, made of :mod:`~salon.emulator.core`
(state), :mod:`~salon.emulator.sending` (the send path), :mod:`~salon.emulator.inbound`
(playing the client), :mod:`~salon.emulator.views` (what the admin API reads) and
:mod:`~salon.emulator.account` (settings, clock, templates)), :mod:`~salon.emulator.model`
(what the account keeps), :mod:`~salon.emulator.versions` (Graph API version calendar),
:mod:`~salon.emulator.app` (routes), :mod:`~salon.emulator.testing` (run it in tests).

Run: ``python -m salon.emulator --port 5900 --webhook-url URL --clock-file PATH``.
"""

from __future__ import annotations

from salon.emulator.app import create_app, emulator_of
from salon.emulator.config import ENV_VARS, EmulatorConfig
from salon.emulator.service import Emulator

__all__ = ["ENV_VARS", "Emulator", "EmulatorConfig", "create_app", "emulator_of"]
