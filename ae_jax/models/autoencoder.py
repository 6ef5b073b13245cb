"""`Autoencoder`: decoder(encoder(x)), whatever the two halves are."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# The collections a module may write besides its params: loss terms and metrics per image
# (the objective, ae_jax/training/objectives.py, weighs and logs them by name), and, in a
# train step only, what to add to its params after the optimizer's update (a VQ-VAE's EMA
# codebook).
LOSSES = "losses"
METRICS = "metrics"
DELTAS = "param_deltas"


class Autoencoder(nn.Module):
  """decoder(encoder(x)). Params have top-level `encoder` and `decoder` subtrees.

  `__call__` returns float32 logits (for the loss), whatever the compute dtype; `decode`
  and `reconstruct` return images in [0, 1]. Either half may report loss terms and
  metrics per image by `self.sow("losses" | "metrics", name, values_B)`: the objective
  (ae_jax/training/objectives.py) weighs and adds the losses, and logs both.
  """
  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, x: jax.Array) -> jax.Array:
    return _float32(self.decoder(self.encoder(x)))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return nn.sigmoid(_float32(self.decoder(z)))

  def reconstruct(self, x: jax.Array) -> jax.Array:
    return nn.sigmoid(self(x))


def _float32(x: jax.Array) -> jax.Array:
  return x if x.dtype == jnp.float32 else x.astype(jnp.float32)
