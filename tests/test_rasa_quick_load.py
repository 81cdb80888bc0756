"""``scripts/rasa_quick_load.py``: Rasa's command line, each TensorFlow model built eagerly
while it loads and run on TensorFlow's graphs after (the checks load the model this way)."""

from __future__ import annotations

import subprocess
import sys

import rasa

from salon.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "rasa_quick_load.py"


def test_it_runs_rasas_command_line_with_the_arguments_given() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--version"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Rasa Version      :         {rasa.__version__}" in done.stdout


# A RasaModel whose construction (the first thing ``RasaModel.load`` does) notes whether
# TensorFlow runs eagerly at that moment; the second one fails there, as a broken model
# file would.
PROBE = """
import importlib.util, sys
import tensorflow as tf
from rasa.utils.tensorflow.models import RasaModel

spec = importlib.util.spec_from_file_location("quick", sys.argv[1])
quick = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quick)
quick.install()
quick.install()  # once is enough: a second call wraps nothing twice

seen = []

class Probe(RasaModel):
    def __init__(self, fail=False):
        seen.append(tf.config.functions_run_eagerly())
        raise RuntimeError("broken") if fail else SystemExit(0)

print("before", tf.config.functions_run_eagerly())
for fail in (False, True):
    try:
        Probe.load("weights", None, fail=fail)
    except (SystemExit, RuntimeError) as error:
        print("load", seen[-1], type(error).__name__, "after", tf.config.functions_run_eagerly())
print("wrapped once", getattr(RasaModel.load.__func__, "__wrapped__", None) is not None
      and not getattr(RasaModel.load.__func__.__wrapped__, "quick", False))
"""


def test_a_model_loads_eagerly_and_predicts_on_graphs_after_even_when_loading_failed() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, str(SCRIPT)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:4] == [
        "before False",
        "load True SystemExit after False",
        "load True RuntimeError after False",
        "wrapped once True",
    ]
