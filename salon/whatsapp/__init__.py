"""The WhatsApp Cloud API side of Salon, without Rasa.

- :mod:`salon.whatsapp.signature`: ``X-Hub-Signature-256`` signing and checking;
- :mod:`salon.whatsapp.updates`: webhook payloads → typed inbound messages, statuses,
  template lifecycle events and marketing preferences;
- :mod:`salon.whatsapp.graph`: the asynchronous Graph API client (Meta or 360dialog);
- :mod:`salon.whatsapp.messages`: assistant responses → Cloud API message objects;
- :mod:`salon.webhook.records`: the durable inbox (dedup) and the outbound record;
- :mod:`salon.consent.book`: what each client agreed to receive;
- :mod:`salon.guard.sender`: the send-time guard every message goes through;
- :mod:`salon.webhook.pipeline`: the webhook pipeline the Rasa channel adapts.
"""
