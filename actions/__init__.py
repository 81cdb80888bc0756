"""Custom actions for the action server (`python -m actions.server`).

One module per capability; each is a thin adapter over the core in ``salon/``.
"""

from salon.logmask import install_log_masking

# The action server imports this package first: its logs carry no personal data.
install_log_masking()
