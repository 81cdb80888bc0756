"""Custom actions for the rasa-sdk action server (`python -m rasa_sdk --actions actions`).

One module per capability; each is a thin adapter over the core in ``salon/``.
"""

from salon.logmask import install_log_masking

# The action server imports this package first: its logs carry no personal data.
install_log_masking()
