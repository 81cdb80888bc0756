"""Rasa channel connectors. They run inside `rasa run` and are thin adapters over the
core in ``salon/``.
"""
