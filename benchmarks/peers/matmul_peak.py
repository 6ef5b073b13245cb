"""The machine's matmul peak, probed by benchmarks/run.py next to each ae_jax dense run.

  python benchmarks/peers/matmul_peak.py     # prints {"peak_gflops": ...}

GFLOP/s of one 2048x2048 float32 product under XLA with JAX's own defaults (its YNNPACK
dot is the fastest large product here), median of 5 rounds of 2 calls: the measure
the micro-benchmarks of issue #4 used (benchmarks/dense_ops.py, removed; read it at commit
83c9b83). Its own process, so ae_jax's XLA flag is not set.
"""
import json
import os
import time

os.environ.pop("XLA_FLAGS", None)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

N = 2048


def median_ms(fn, *args, n: int = 20) -> float:
  """Median over 5 rounds of the mean milliseconds per call of `fn(*args)`, after a warm-up."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(n):
      out = fn(*args)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - t0) / n * 1000)
  return float(np.median(times))


def main() -> None:
  a = jnp.ones((N, N), jnp.float32)
  ms = median_ms(jax.jit(lambda a: a @ a), a, n=2)
  print(json.dumps({"peak_gflops": 2 * N**3 / (ms / 1000) / 1e9}))


if __name__ == "__main__":
  main()
