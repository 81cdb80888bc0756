"""The ``rasa run`` command line a stack starts (salon/dev/stack.py), read by Rasa's own
argument parser: a generated secret may begin with "-" (``secrets.token_urlsafe``), and
must still be read as the value of ``--jwt-secret``, not as another option.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.__main__ import create_argument_parser

from salon.dev.stack import StackConfig, rasa_run_args


@pytest.mark.parametrize("secret", ["-Zx9_plain-start", "--looks-like-an-option", "ordinary_secret"])
def test_the_jwt_secret_reaches_rasa_whatever_its_first_character(tmp_path: Path, secret: str) -> None:
    config = StackConfig(model=tmp_path / "model.tar.gz", workdir=tmp_path, rasa_jwt_secret=secret)
    argv = rasa_run_args(config, credentials=tmp_path / "credentials.yml", endpoints=tmp_path / "endpoints.yml")
    parsed = create_argument_parser().parse_args(argv)
    assert parsed.jwt_secret == secret and parsed.jwt_method == "HS256"
    assert parsed.enable_api and parsed.interface == "127.0.0.1" and parsed.model == str(config.model)
