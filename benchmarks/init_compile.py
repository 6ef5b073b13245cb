"""Compile time of the model init (TrainState creation) with XLA's default backend
optimization and with steps.QUICK_COMPILE, which train.py uses, and whether the
parameters are identical.

  python benchmarks/init_compile.py
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax import models, steps  # pylint: disable=wrong-import-position
from configs import conv, dense  # pylint: disable=wrong-import-position


def main():
  print(f"backend: {jax.default_backend()}\n| model | default compile s | QUICK_COMPILE s | "
        "same params |\n|---|---|---|---|")
  for name, module in (("dense", dense), ("conv", conv)):
    config, model = module.get_config(), models.make_autoencoder(name)
    init = lambda rng, m=model, c=config: steps.create_train_state(m, c, (28, 28, 1), rng).params
    rng, seconds, params = jax.random.key(config.seed), [], []
    for options in (None, steps.QUICK_COMPILE):
      t0 = time.perf_counter()
      compiled = jax.jit(init, compiler_options=options).lower(rng).compile()
      seconds.append(time.perf_counter() - t0)
      params.append(jax.tree.leaves(compiled(rng)))
    same = all(np.array_equal(a, b) for a, b in zip(*params))
    print(f"| {name} | {seconds[0]:.2f} | {seconds[1]:.2f} | {same} |", flush=True)


if __name__ == "__main__":
  main()
