"""Meta's wire, and nothing else: what the Cloud API sends us and what we send it.

- :mod:`salon.whatsapp.updates`: webhook JSON → typed updates (messages, statuses,
  identity changes, template events, marketing preferences);
- :mod:`salon.whatsapp.messages`: assistant responses → Cloud API message objects;
- :mod:`salon.whatsapp.addressing`: the recipient fields of a send (``to`` or BSUID);
- :mod:`salon.whatsapp.errors`: the one map from Graph error codes to typed errors and
  their retry policy;
- :mod:`salon.whatsapp.graph`: the asynchronous Graph API client (Meta or 360dialog), on
  :mod:`salon.whatsapp.http1`'s keep-alive connections;
- :mod:`salon.whatsapp.signature`: ``X-Hub-Signature-256``;
- :mod:`salon.whatsapp.versions`: Graph API versions and their end of life.
"""
