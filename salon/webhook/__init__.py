"""Meta's webhook in: verify, deduplicate, record the window, acknowledge, hand turns on."""
