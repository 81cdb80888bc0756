"""``python scripts/rasa_quick_load.py ARGS``: ``rasa ARGS``, each TensorFlow model of
Rasa built eagerly when it is loaded, then run on TensorFlow's graphs as ``rasa run`` does.

To load a trained model, Rasa builds it by running one training step on an example, then
overwrites the weights that step made with the trained ones (``RasaModel.load``). On
TensorFlow's graphs that step is traced first: about 40 s of a quiet 2-core machine for
DIET and TED together, paid by every process that loads the model, for weights thrown
away. Here that step runs eagerly, and every function after it (prediction above all)
runs as in production: traced once, on the first message, then on the graph. The same
intents, entities and confidences come out; the model loads in about 4 s instead of 43,
and each message costs what it costs in production (docs/testing.md has the figures).

``make rasa-test``, the smoke conversations, ``make demo-check`` and the end-to-end tests
load the model this way (``StackConfig.quick_model_load``); ``rasa train``, ``make run``
and ``make demo`` run Rasa untouched. The training step itself is still traced on graphs
by ``rasa train``. Rasa is imported here, outside ``salon/`` (its core imports no Rasa).
"""

from __future__ import annotations

import functools
import runpy
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def eagerly() -> Iterator[None]:
    """TensorFlow runs its functions eagerly inside, as it did before outside."""
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


def install() -> None:
    """Make ``RasaModel.load`` (every TensorFlow model Rasa loads: DIET, TED …) run
    eagerly; once per process."""
    from rasa.utils.tensorflow.models import RasaModel

    load: Callable[..., Any] = RasaModel.load.__func__  # type: ignore[attr-defined]
    if getattr(load, "quick", False):
        return

    @functools.wraps(load)
    def quick(cls: type[RasaModel], *args: Any, **kwargs: Any) -> RasaModel:
        with eagerly():
            return load(cls, *args, **kwargs)

    quick.quick = True  # type: ignore[attr-defined]
    RasaModel.load = classmethod(quick)  # type: ignore[method-assign, assignment]


def main(argv: list[str] | None = None) -> None:
    """Rasa's command line with ``argv`` (default: this process's arguments)."""
    install()
    script = Path(sys.executable).parent / "rasa"
    sys.argv = [str(script), *(sys.argv[1:] if argv is None else argv)]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
