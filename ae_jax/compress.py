"""`python -m ae_jax.compress`: the command's entry point. The tool itself is
`ae_jax/compression/compress_cli.py` (the codec's API: `ae_jax/compression/compress.py`); its names are importable from here too."""
import os
import sys

from ae_jax.compression.compress import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
from ae_jax.compression.compress_cli import main

if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only reads tfds data here
  sys.exit(main())
