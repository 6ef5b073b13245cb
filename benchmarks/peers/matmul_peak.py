"""The machine's matmul peak, probed by benchmarks/run.py next to each ae_jax dense run.

  python benchmarks/peers/matmul_peak.py     # prints {"peak_gflops": ...}

GFLOP/s of one 2048x2048 float32 product under XLA with JAX's own defaults (its YNNPACK
dot is the fastest large product here), median of 5 rounds of 2 calls: the measure
benchmarks/dense_ops.py uses. Its own process, so ae_jax's XLA flag is not set.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.pop("XLA_FLAGS", None)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.timing import median_ms  # noqa: E402

N = 2048


def main() -> None:
  a = jnp.ones((N, N), jnp.float32)
  ms = median_ms(jax.jit(lambda a: a @ a), a, n=2)
  print(json.dumps({"peak_gflops": 2 * N**3 / (ms / 1000) / 1e9}))


if __name__ == "__main__":
  main()
