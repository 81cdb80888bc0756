"""The emulated account: clients, windows, outbox, media, templates, status lifecycles
and webhooks. The Sanic routes (:mod:`salon.emulator.app`) are thin wrappers around
:class:`Emulator`.

:class:`Emulator` is one object made of its jobs: the shared state
(:mod:`~salon.emulator.core`), the send path (:mod:`~salon.emulator.sending`), playing the
client (:mod:`~salon.emulator.inbound`), the WhatsApp Business app on the same number
(:mod:`~salon.emulator.coexistence`), the views the admin API and the phone page read
(:mod:`~salon.emulator.views`) and the account's settings (:mod:`~salon.emulator.account`).

Synchronous rejections raise :class:`~salon.emulator.graph_errors.GraphError`; admin
request problems raise :class:`AdminError` (HTTP 400/404 with ``{"error": "..."}``).

Synchronous or asynchronous, as Meta does it:

- request problems (validation, unknown template, template status, parameter mismatch,
  pair rate, throughput) are synchronous Graph errors; the send is recorded in the
  outbox as ``rejected``;
- an authentication template to a BSUID (131062) is refused synchronously too;
- a free-form message outside the window (131047), a marketing template to a client
  who stopped marketing messages (131050) or who got a marketing template outside their
  window less than ``marketing_cap_hours`` ago (131049, per-user cap), and a send to an
  id a client left behind in an identity change (131026) are *accepted* (200 + wamid)
  and then fail with a ``failed`` status webhook, because Meta decides those at delivery
  time;
- a BSUID in ``to`` is accepted and then silently dropped (no status at all);
- a message an advisor sends from the WhatsApp Business app (``/_emulator/echo``) goes
  through no Graph API call: the bot gets an ``smb_message_echoes`` webhook, the client's
  window is not touched;
- everything else gets ``sent`` → ``delivered`` → ``read`` status webhooks after the
  configured delays (wall-clock seconds after acceptance; ``read`` can be disabled).
"""

from __future__ import annotations

from salon.emulator.account import AccountMixin
from salon.emulator.coexistence import CoexistenceMixin
from salon.emulator.inbound import InboundMixin
from salon.emulator.model import AdminError, Client, MediaItem, OutboundMessage
from salon.emulator.sending import SendingMixin
from salon.emulator.views import ViewsMixin

__all__ = ["AdminError", "Client", "Emulator", "MediaItem", "OutboundMessage"]


class Emulator(SendingMixin, InboundMixin, CoexistenceMixin, ViewsMixin, AccountMixin):
    """State and behaviour of the emulated WhatsApp Business Account."""
