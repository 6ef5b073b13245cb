"""Compile time of the model init (TrainState creation) with XLA's default backend
optimization, at backend optimization level 1 alone, and with steps.QUICK_COMPILE, which
train.py uses (level 1 and, on a measured jaxlib, XLA:CPU's older loop emitters), and
whether the parameters are identical to the default compile's.

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

from ae_jax import models, steps  # pylint: disable=wrong-import-position
from configs import conv, dense  # pylint: disable=wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  rounds = parser.parse_args().rounds
  settings = {"default": None, "level 1": {"xla_backend_optimization_level": 1},
              "QUICK_COMPILE": steps.QUICK_COMPILE}
  print(f"backend: {jax.default_backend()}; QUICK_COMPILE = {steps.QUICK_COMPILE}; "
        f"median (range) of {rounds} compiles\n| model | "
        + " | ".join(f"{name} compile s" for name in settings)
        + " | same params |\n|---|" + "---|" * (len(settings) + 1))
  for name, module in (("dense", dense), ("conv", conv)):
    config, model = module.get_config(), models.make_autoencoder(name)
    rng, seconds, params = jax.random.key(config.seed), {k: [] for k in settings}, {}
    for _ in range(rounds):
      for setting, options in settings.items():
        init = lambda rng, m=model, c=config: steps.create_train_state(m, c, (28, 28, 1),
                                                                        rng).params
        t0 = time.perf_counter()
        compiled = jax.jit(init, compiler_options=options).lower(rng).compile()
        seconds[setting].append(time.perf_counter() - t0)
        params[setting] = jax.tree.leaves(compiled(rng))
    same = all(np.array_equal(a, b) for k in settings
               for a, b in zip(params["default"], params[k]))
    cells = [f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" for v in seconds.values()]
    print(f"| {name} | {' | '.join(cells)} | {same} |", flush=True)


if __name__ == "__main__":
  main()
