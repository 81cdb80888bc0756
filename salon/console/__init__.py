"""The advisor console: where client advisors work, in a browser."""
