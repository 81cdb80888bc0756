"""Rasa graph components of this project: thin adapters over ``salon/``."""
