"""`Autoencoder`: decoder(encoder(x)), whatever the two halves are."""
from __future__ import annotations

import dataclasses

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
# RNG streams: 'sample' draws what a model samples in training and evaluation alike (a
# VAE's z, a prior's draws); 'quantization' the uniform noise that stands in for rounding
# in training only (the codecs': evaluation rounds, as the codes files do, and as
# CompressAI's eval mode).
SAMPLE = "sample"
QUANTIZATION = "quantization"


@dataclasses.dataclass(frozen=True)
class ParamGroup:
  """Parameters trained apart from the rest of the model, with an optimizer of their own:
  those under `path` (submodule names from the params' root, ('encoder', 'discriminator')),
  on the loss terms `terms` alone (each times its loss weight), with Adam at
  `learning_rate` (None: the run's). The rest of the model is trained on the objective
  without those terms. A module declares its groups in a `param_groups()` method (an
  adversarial autoencoder's discriminator: ae_jax/models/adversarial.py), with paths from
  itself; `param_groups(model)` gives them from the root."""
  name: str
  path: tuple[str, ...]
  terms: tuple[str, ...]
  learning_rate: float | None = None


def param_groups(model: "Autoencoder") -> tuple[ParamGroup, ...]:
  """The parameter groups the encoder and decoder declare, their paths from the root."""
  out = []
  for half in ("encoder", "decoder"):
    declare = getattr(getattr(model, half), "param_groups", None)
    for group in (declare() if declare is not None else ()):
      out.append(dataclasses.replace(group, path=(half, *group.path)))
  return tuple(out)


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
