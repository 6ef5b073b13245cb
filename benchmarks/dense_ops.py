"""Where the dense autoencoder's train step spends its time on this backend.

  python benchmarks/dense_ops.py

Median ms (5 x 50 calls) of the pieces of one step at batch 128: a 784x64 matmul, the
BCE written as optax's log-sigmoid form and as softplus(z) - t z (ae_jax's), and the
whole jitted train step. On XLA:CPU the transcendental functions, not the matmuls,
dominate, which is why ae_jax uses the softplus form.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import optax  # pylint: disable=wrong-import-position

from benchmarks.timing import median_ms  # pylint: disable=wrong-import-position
from ae_jax import models, steps  # pylint: disable=wrong-import-position
from configs import dense  # pylint: disable=wrong-import-position


def main():
  x = jax.random.uniform(jax.random.key(0), (128, 28, 28, 1))
  z = jax.random.normal(jax.random.key(1), x.shape)
  w = jax.random.normal(jax.random.key(2), (784, 64))
  ae = models.make_autoencoder("dense")
  state = steps.create_train_state(ae, dense.get_config(), (28, 28, 1))
  rows = {
      "matmul 128x784 @ 784x64": (jax.jit(lambda a, b: a @ b), x.reshape(128, 784), w),
      "BCE, optax log-sigmoid form": (
          jax.jit(lambda l: optax.sigmoid_binary_cross_entropy(l, x).mean()), z),
      "BCE, softplus(z) - t z (ae_jax)": (
          jax.jit(lambda l: (jax.nn.softplus(l) - l * x).mean()), z),
      "exp over 100k values": (jax.jit(lambda l: jnp.exp(l).mean()), z),
      "whole train step (ae_jax)": (
          jax.jit(lambda s: steps.train_step(s, x, x, "bce")[1]), state),
  }
  print(f"backend: {jax.default_backend()}, batch 128\n| piece | ms |\n|---|---|")
  for name, (fn, *args) in rows.items():
    print(f"| {name} | {median_ms(fn, *args, n=50):.2f} |", flush=True)


if __name__ == "__main__":
  main()
