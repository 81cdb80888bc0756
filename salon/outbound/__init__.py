"""Messages the maison starts: the durable queue, its worker, pacing, API, CLI, reminders and restock alerts."""
