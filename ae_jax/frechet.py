"""`python -m ae_jax.frechet`: the command's entry point. The tool itself is
`ae_jax/evaluation/frechet.py`; its names are importable from here too."""
import os
import sys

from ae_jax.evaluation.frechet import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
from ae_jax.evaluation.frechet import main

if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
