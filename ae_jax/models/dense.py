"""Dense autoencoders: the lecture's 784 -> K -> 784, and the deep MLP of the Keras blog
(784-128-64-32-64-128-784, relu).

Decoders return logits, flattening whatever code they are given: a dense decoder takes
any encoder's code (a conv encoder's (4, 4, 8) as 128 numbers).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, linear

IMAGE_SHAPE = (28, 28, 1)


def _flatten(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1)


def _hidden_layers(module: nn.Module, x: jax.Array) -> jax.Array:
  """Flatten, then Dense(h) + the module's activation for each h in its `hidden`."""
  act = checks.ACTIVATIONS[module.activation]
  x = _flatten(x)
  for i, h in enumerate(module.hidden):
    x = act(linear.dense(h, module.kernel_init, module.dtype, name=f"hidden{i}")(x))
  return x


class DenseEncoder(nn.Module):
  """Flatten -> Dense(latent_dim), linear: the code is the `latent_vector` layer."""
  latent_dim: int = 64
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  SCAN_ON_CPU = True  # see train._steps_per_call

  def __post_init__(self):
    checks.positive_int(self, "latent_dim")
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    return nn.Dense(self.latent_dim, dtype=self.dtype, name="latent_vector")(
        _flatten(x_BxHxWxC))


class DenseDecoder(nn.Module):
  """Dense(H*W*C) -> reshape; returns logits (the sigmoid is applied at the edge)."""
  image_shape: Sequence[int] = IMAGE_SHAPE
  kernel_init: str = "lecun_normal"  # Flax's; 'glorot_uniform' Keras'; 'torch' PyTorch's
  dtype: Any = jnp.float32
  SCAN_ON_CPU = True

  def __post_init__(self):
    checks.image_shape(self)
    checks.initializer(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, z_BxK: jax.Array) -> jax.Array:
    x = linear.dense(math.prod(self.image_shape), self.kernel_init, self.dtype,
                     name="output")(_flatten(z_BxK))
    return x.reshape(z_BxK.shape[0], *self.image_shape)


class MLPEncoder(nn.Module):
  """Flatten -> Dense(h) + activation for each h in `hidden` -> Dense(latent_dim) +
  `code_activation`. The Keras blog's deep encoder: hidden (128, 64), latent 32, relu both."""
  hidden: Sequence[int] = (128, 64)
  latent_dim: int = 32
  activation: str = "relu"
  code_activation: str = "relu"
  kernel_init: str = "lecun_normal"  # Flax's; 'glorot_uniform' Keras'; 'torch' PyTorch's
  dtype: Any = jnp.float32
  SCAN_ON_CPU = True

  def __post_init__(self):
    checks.positive_ints(self, "hidden")
    checks.positive_int(self, "latent_dim")
    checks.activation(self, "activation")
    checks.activation(self, "code_activation")
    checks.initializer(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    x = _hidden_layers(self, x_BxHxWxC)
    z = linear.dense(self.latent_dim, self.kernel_init, self.dtype, name="latent_vector")(x)
    z = checks.ACTIVATIONS[self.code_activation](z)
    self.report(z)
    return z

  def report(self, z_BxK: jax.Array) -> None:
    """Where a subclass sows the terms and metrics of its code (models/sparse.py)."""


class MLPDecoder(nn.Module):
  """Dense(h) + activation for each h in `hidden` -> Dense(H*W*C) logits. The Keras blog's
  deep decoder: hidden (64, 128), relu."""
  hidden: Sequence[int] = (64, 128)
  activation: str = "relu"
  image_shape: Sequence[int] = IMAGE_SHAPE
  kernel_init: str = "lecun_normal"  # Flax's; 'glorot_uniform' Keras'; 'torch' PyTorch's
  dtype: Any = jnp.float32
  SCAN_ON_CPU = True

  def __post_init__(self):
    checks.positive_ints(self, "hidden")
    checks.activation(self, "activation")
    checks.image_shape(self)
    checks.initializer(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    x = _hidden_layers(self, z)
    x = linear.dense(math.prod(self.image_shape), self.kernel_init, self.dtype, name="output")(x)
    return x.reshape(z.shape[0], *self.image_shape)
