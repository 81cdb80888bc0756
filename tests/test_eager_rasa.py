"""``python -m salon.dev.eager_rasa``: Rasa's command line, TensorFlow's functions run
eagerly (the model checks load the trained model this way)."""

from __future__ import annotations

import subprocess
import sys

import rasa


def test_it_runs_rasas_command_line_with_the_arguments_given() -> None:
    done = subprocess.run([sys.executable, "-m", "salon.dev.eager_rasa", "--version"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Rasa Version      :         {rasa.__version__}" in done.stdout


def test_tensorflow_runs_eagerly_in_its_process() -> None:
    script = ("import sys, runpy, tensorflow as tf\n"
              "from salon.dev import eager_rasa\n"
              "runpy.run_path = lambda *a, **k: print('eager', tf.config.functions_run_eagerly())\n"
              "eager_rasa.main(['--version'])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("eager True")
