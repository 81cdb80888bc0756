"""The virtualenv's own defaults (salon/dev/venv_defaults.py, loaded by salon-defaults.pth):
they hold for any process of .venv, typed commands included, not only inside make."""

from __future__ import annotations

import os
import subprocess
import sys

from salon.dev import venv_defaults

BARS = """
from tqdm import tqdm
for _ in tqdm(range(3), desc="Epochs", disable=False):  # what Rasa passes
    pass
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"RASA_TELEMETRY_ENABLED", "TQDM_DISABLE"}}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=True, timeout=60)


def test_telemetry_is_off_in_every_process_of_the_venv_unless_asked_for() -> None:
    probe = "import os; print(os.environ.get('RASA_TELEMETRY_ENABLED'))"
    assert _run(probe).stdout.strip() == "false", "salon-defaults.pth missing: run make install"
    assert _run(probe, RASA_TELEMETRY_ENABLED="true").stdout.strip() == "true"


def test_tqdm_disable_silences_bars_whose_caller_passes_disable() -> None:
    assert "Epochs" in _run(BARS).stderr  # bars are drawn by default
    assert _run(BARS, TQDM_DISABLE="1").stderr == ""
    assert "Epochs" in _run(BARS, TQDM_DISABLE="0").stderr


def test_apply_fills_only_what_is_unset() -> None:
    env = {"RASA_TELEMETRY_ENABLED": "true"}
    venv_defaults.apply(env)
    assert env == {"RASA_TELEMETRY_ENABLED": "true"}
    empty: dict[str, str] = {}
    venv_defaults.apply(empty)
    assert empty == {"RASA_TELEMETRY_ENABLED": "false"}
