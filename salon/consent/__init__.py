"""What each client agreed to receive: the ledger of decisions and the book the guard reads."""
