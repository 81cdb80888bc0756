"""Who may call what: bearer tokens and scopes, rate limits, Rasa's JWT, sealed client ids."""
