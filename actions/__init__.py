"""Custom actions for the rasa-sdk action server (`python -m rasa_sdk --actions actions`).

One module per capability; each is a thin adapter over the core in ``salon/``.
"""
