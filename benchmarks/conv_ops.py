"""Where the conv autoencoder's train step spends its time on this backend, by op form.

  python benchmarks/conv_ops.py

Times one value_and_grad of the conv autoencoder's BCE (batch 128) with the max-pool and
the decoder's upsample + conv written in different but equal forms, and prints a table
(median ms of 5x20). The forms ae_jax uses (models.max_pool_2x2, models.PatchConv for the
encoder's first conv, models.UpsampleConv) are the fastest measured here.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position

from benchmarks.timing import median_ms  # pylint: disable=wrong-import-position
from ae_jax.core import metrics  # pylint: disable=wrong-import-position
from ae_jax import models


def _pad_odd(v):
  return jnp.pad(v, ((0, 0), (0, v.shape[1] % 2), (0, v.shape[2] % 2), (0, 0)),
                 constant_values=-jnp.inf)


POOLS = {
    "ae_jax: reshape + pairwise maximum": models.max_pool_2x2,
    "flax nn.max_pool (reduce_window)": lambda v: nn.max_pool(v, (2, 2), (2, 2), "SAME"),
    "reshape + max reduction": lambda v: _pad_odd(v).reshape(
        v.shape[0], (v.shape[1] + 1) // 2, 2, (v.shape[2] + 1) // 2, 2, v.shape[3]).max((2, 4)),
    "floor: strided slice (not a max-pool)": lambda v: _pad_odd(v)[:, ::2, ::2],
}
ENCODERS = {
    "ae_jax: first conv as PatchConv (im2col + matmul)": models.ConvEncoder,
    "literal: nn.Conv": models.PlainConvEncoder,
}
DECODERS = {
    "ae_jax: UpsampleConv (conv of the small image, depth-to-space)": models.ConvDecoder,
    "literal: upsample_2x then nn.Conv": models.PlainConvDecoder,
}


def step_ms(x, encoder, decoder) -> float:
  ae = models.Autoencoder(encoder(), decoder())
  params = ae.init(jax.random.key(1), x)["params"]
  loss = lambda p: metrics.bce_from_logits(ae.apply({"params": p}, x), x).mean()
  return median_ms(jax.jit(jax.value_and_grad(loss)), params)


def main():
  x = jax.random.uniform(jax.random.key(0), (128, 28, 28, 1))
  pool = models.max_pool_2x2
  print(f"backend: {jax.default_backend()}, batch 128, value_and_grad of the conv AE's BCE")
  print("| max-pool form | encoder form | decoder form | ms per step |\n|---|---|---|---|")
  try:
    for pool_name, pool_fn in POOLS.items():
      models.max_pool_2x2 = pool_fn
      for enc_name, encoder in ENCODERS.items():
        for dec_name, decoder in DECODERS.items():
          ms = step_ms(x, encoder, decoder)
          print(f"| {pool_name} | {enc_name} | {dec_name} | {ms:.1f} |", flush=True)
  finally:
    models.max_pool_2x2 = pool


if __name__ == "__main__":
  main()
