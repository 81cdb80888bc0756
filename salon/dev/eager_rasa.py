"""``python -m salon.dev.eager_rasa ARGS``: ``rasa ARGS`` with TensorFlow running its
functions eagerly, for the checks that load the trained model only to talk to it.

Rasa builds each TensorFlow model it loads by tracing and running one training step on an
example (``RasaModel.load``), then tracing prediction: about a minute for DIET and TED on
a quiet 2-core machine, paid by every process that loads the model. Run eagerly, the same
model loads in about 9 s and gives the same predictions, each some 50 ms slower
(docs/testing.md has the figures). ``make rasa-test``, the smoke conversations and
``make demo-check`` load it this way; ``rasa train``, ``make run``, ``make demo`` and the
end-to-end tests keep TensorFlow's graphs.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Run Rasa's command line with ``argv`` (default: this process's arguments), every
    TensorFlow function of the process run eagerly.
    """
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    script = Path(sys.executable).parent / "rasa"
    sys.argv = [str(script), *(sys.argv[1:] if argv is None else argv)]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
