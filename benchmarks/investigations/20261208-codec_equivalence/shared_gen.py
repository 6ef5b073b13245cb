"""Batches and noise for step `step` of the long runs, the same numbers in both venvs
(numpy PCG64 seeded per step): (indices [B], z noise [B,1,1,64], y noise [B,4,4,96])."""
import numpy as np
def batch(step, b=32, n=60000):
  rng = np.random.default_rng([7, step])
  idx = rng.choice(n, b, replace=False)
  zn = rng.uniform(-0.5, 0.5, (b, 1, 1, 64)).astype(np.float32)
  yn = rng.uniform(-0.5, 0.5, (b, 4, 4, 96)).astype(np.float32)
  return idx, zn, yn
def checksum(steps=3):
  return float(sum(batch(s)[1].sum() + batch(s)[2].sum() + batch(s)[0].sum() for s in range(steps)))
