"""Launchers for a developer's machine: the demo, the whole stack, the virtualenv's defaults."""
