"""`python -m ae_jax.classifier`: the command's entry point. The tool itself is
`ae_jax/evaluation/classifier.py`; its names are importable from here too."""
import os
import sys

from ae_jax.evaluation.classifier import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
from ae_jax.evaluation.classifier import main

if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
