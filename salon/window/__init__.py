"""The customer service window: its pure rules and each client's state, in Redis or SQL."""
