"""The send-time guard: every message to a client is decided and sent here, window checked again."""
