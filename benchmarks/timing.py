"""The one timing helper the micro-benchmarks share."""
import time

import jax
import numpy as np


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
