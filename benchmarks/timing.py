"""The timing helpers the micro-benchmarks share."""
import json
import os
import subprocess
import sys
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


def child_json(code: str, env: dict) -> dict:
  """Runs `python -c code` in a new process with `env` added to this one's environment,
  less any XLA flags (XLA reads them once, at start-up: each child sets its own), and
  returns the JSON object its last line of output prints."""
  base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "AE_JAX_KEEP_XLA_FLAGS")}
  done = subprocess.run([sys.executable, "-c", code], env={**base, **env}, check=True,
                        capture_output=True, text=True)
  return json.loads(done.stdout.strip().splitlines()[-1])


def alternating_ms(variants: dict, call, calls: int, warmup: int = 3):
  """Times `call(compiled, state, i)` for each variant in turn, `calls` rounds after
  `warmup`, so that the machine's drift falls on all variants alike.

  `variants` maps a name to [compiled, state]; each call's new state replaces the old one
  in place, so the variants carry on from one use to the next. Returns the milliseconds
  of each call (name -> list) and each variant's last output (name -> output).
  """
  times = {name: [] for name in variants}
  last = {}
  for i in range(calls + warmup):
    for name, variant in variants.items():
      t0 = time.perf_counter()
      variant[1], out = call(variant[0], variant[1], i)
      jax.block_until_ready(out)
      if i >= warmup:
        times[name].append((time.perf_counter() - t0) * 1000)
      last[name] = out
  return times, last
