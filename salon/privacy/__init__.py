"""GDPR: export, erasure, retention purge, and their HTTP API."""
