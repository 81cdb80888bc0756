"""The project's defaults for every Python process of its virtualenv.

``make install`` writes ``salon-defaults.pth`` into ``.venv``'s site-packages; Python runs
its one line (``import salon.dev.venv_defaults``) at start-up, so these defaults hold for the
commands a developer types (``.venv/bin/rasa train``, ``rasa test``, ``rasa shell``) as
much as inside ``make``. Each fills in only what the environment leaves unset:

- **Rasa's telemetry is off** (``RASA_TELEMETRY_ENABLED=false``): nothing is reported to
  Rasa about this project. ``RASA_TELEMETRY_ENABLED=true`` turns it back on.
- **``TQDM_DISABLE`` is honoured by Rasa's progress bars.** tqdm reads ``TQDM_DISABLE``
  only as the default of its ``disable`` argument, and Rasa always passes that argument
  (``disable=rasa.shared.utils.io.is_logging_disabled()``, true only when Rasa's own log
  level is WARNING or ERROR), so training epochs and story blocks drew their bars into
  every log. With ``TQDM_DISABLE`` set to 1/true/yes, every bar is disabled whatever the
  caller passes; unset, bars stay as they are.
"""

from __future__ import annotations

import os
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
#: ``disable`` is tqdm's 11th positional parameter after ``self``.
_DISABLE_POSITION = 10


def quiet_progress_bars() -> None:
    """Make every tqdm bar of this process disabled (see the module's docstring)."""
    from tqdm import std

    original = std.tqdm.__dict__["__init__"]
    if getattr(original, "_salon_quiet", False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > _DISABLE_POSITION:
            args = (*args[:_DISABLE_POSITION], True, *args[_DISABLE_POSITION + 1:])
        else:
            kwargs["disable"] = True
        original.__get__(self, type(self))(*args, **kwargs)

    __init__.__dict__["_salon_quiet"] = True  # marks the patch: applied once per process
    std.tqdm.__init__ = __init__


def apply(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Fill in the project's defaults that ``environ`` leaves unset (see the module's
    docstring); runs on import.
    """
    environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    if environ.get("TQDM_DISABLE", "").strip().lower() in _TRUE:
        quiet_progress_bars()


apply()
