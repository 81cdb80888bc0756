"""Salon: the core of a WhatsApp clienteling assistant.

This package holds the rules and state that both the Rasa server (through the
WhatsApp connector) and the action server rely on. It never imports Rasa, so every
rule can be exercised on its own.
"""

__version__ = "0.1.0"
