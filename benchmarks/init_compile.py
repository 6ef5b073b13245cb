"""Compile time of the model init (TrainState creation) with XLA's default backend
optimization, at backend optimization level 1 alone, with steps.QUICK_COMPILE, which
train.py uses (level 1 and, on a measured jaxlib, XLA:CPU's older loop emitters), and with
QUICK_COMPILE at level 0, and whether each gives the default compile's parameters (and
if not, how many differ and by at most how many float32 units in the last place).

  python benchmarks/init_compile.py [--rounds 3]

Each setting compiles a new function (no cache), settings alternating, `--rounds` times;
the table shows the median (and range) per setting.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax import models  # pylint: disable=wrong-import-position
from ae_jax.training import steps
from configs import conv, dense  # pylint: disable=wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  rounds = parser.parse_args().rounds
  settings = {"default": None, "level 1": {"xla_backend_optimization_level": 1},
              "QUICK_COMPILE": steps.QUICK_COMPILE,
              "QUICK_COMPILE at level 0": {**steps.QUICK_COMPILE,
                                           "xla_backend_optimization_level": 0}}
  print(f"backend: {jax.default_backend()}; QUICK_COMPILE = {steps.QUICK_COMPILE}; "
        f"median (range) of {rounds} compiles\n| model | "
        + " | ".join(f"{name} compile s" for name in settings)
        + " | params vs the default's |\n|---|" + "---|" * (len(settings) + 1))
  for name, module in (("dense", dense), ("conv", conv)):
    config = module.get_config()
    model = models.from_config(config, models.IMAGE_SHAPE)
    rng, seconds, params = jax.random.key(config.seed), {k: [] for k in settings}, {}
    for _ in range(rounds):
      for setting, options in settings.items():
        init = lambda rng, m=model, c=config: steps.create_train_state(m, c, (28, 28, 1),
                                                                        rng).params
        t0 = time.perf_counter()
        compiled = jax.jit(init, compiler_options=options).lower(rng).compile()
        seconds[setting].append(time.perf_counter() - t0)
        params[setting] = jax.tree.leaves(compiled(rng))
    cells = [f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" for v in seconds.values()]
    same = [_difference(params["default"], params[k]) for k in settings if k != "default"]
    print(f"| {name} | {' | '.join(cells)} | {'; '.join(same)} |", flush=True)


def _difference(reference, other) -> str:
  """'same' or 'N of M differ, <= U ulp' for two lists of float32 arrays."""
  ref, oth = (np.concatenate([np.ravel(a) for a in leaves]) for leaves in (reference, other))
  ulp = np.abs(ref.view(np.int32).astype(np.int64) - oth.view(np.int32).astype(np.int64))
  if not ulp.any():
    return "same"
  return f"{int((ulp > 0).sum())} of {ulp.size} differ, <= {int(ulp.max())} ulp"


if __name__ == "__main__":
  main()
