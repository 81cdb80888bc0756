"""Open styling talk, answered from the maison's own data.

- :mod:`salon.llm.config`: ``SALON_LLM_*`` settings; no endpoint configured means no
  provider ever receives anything (the offline responder answers).
- :mod:`salon.llm.constraints`: what the client's words ask a suggestion to respect
  (budget and currency, for whom, occasion, season, size, colour, kind of piece), and
  who each piece is cut for.
- :mod:`salon.llm.retrieval`: BM25 and character n-gram ranking over the catalog, with
  the client's constraints as hard filters.
- :mod:`salon.llm.context`: the current client's profile, only with their consent.
- :mod:`salon.llm.sensitivity`: obvious prompt-injection attempts and open styling talk
  (messages a person must answer are :mod:`salon.advisors.screen`'s).
- :mod:`salon.llm.prompt`: the chat messages: rules, the language to answer in, facts with
  ids, the client's text as data.
- :mod:`salon.llm.client`: the ``openai`` async client with a hard deadline per turn.
- :mod:`salon.llm.guardrails`: checks every answer against the retrieved facts, in
  English, French and Italian alike.
- :mod:`salon.llm.lexicon`: the guardrails' words, one vocabulary per language.
- :mod:`salon.llm.offline`: the deterministic grounded responder, in the conversation's
  language (English, French or Italian).
- :mod:`salon.llm.audit`: every turn recorded, masked, with a retention purge.
- :mod:`salon.llm.responder`: the turn itself, tying the above together.

Nothing here imports Rasa.
"""
