"""Flax Linen autoencoders from the lecture: dense (784 -> K -> 784) and convolutional.

Every decoder returns *logits*; `Autoencoder.decode` and `Autoencoder.reconstruct`
apply the sigmoid at the edge so users get images in [0, 1], while the losses use the
numerically stable logits form. Modules take plain fields, never a config.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMAGE_SHAPE = (28, 28, 1)


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, Keras 'same' padding (odd sizes pad at the end).

  Same values as `nn.max_pool(x, (2, 2), (2, 2), 'SAME')`, written as pad + reshape +
  pairwise `maximum`: XLA:CPU differentiates this far faster than the select-and-scatter
  of `reduce_window` or the tie-splitting gradient of a `max` reduction (benchmarks/
  conv_ops.py: the whole conv train step drops from ~49 to ~37 ms at batch 128).
  """
  b, h, w, c = x_BxHxWxC.shape
  ph, pw = h % 2, w % 2
  if ph or pw:
    x_BxHxWxC = jnp.pad(x_BxHxWxC, ((0, 0), (0, ph), (0, pw), (0, 0)),
                        constant_values=-jnp.inf)
  x = x_BxHxWxC.reshape(b, (h + ph) // 2, 2, (w + pw) // 2, 2, c)
  x = jnp.maximum(x[:, :, 0], x[:, :, 1])
  return jnp.maximum(x[:, :, :, 0], x[:, :, :, 1])


def upsample_2x(x_BxHxWxC: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling (Keras `UpSampling2D(2)`).

  `jnp.repeat` measured a little faster than a broadcast + reshape form in the whole
  step on XLA:CPU (benchmarks/conv_ops.py).
  """
  return jnp.repeat(jnp.repeat(x_BxHxWxC, 2, axis=1), 2, axis=2)


def upsample_2x_broadcast(x_BxHxWxC: jax.Array) -> jax.Array:
  """The same upsampling as broadcast + reshape (kept for the benchmark)."""
  b, h, w, c = x_BxHxWxC.shape
  x = jnp.broadcast_to(x_BxHxWxC[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


class DenseEncoder(nn.Module):
  """Flatten -> Dense(latent_dim), linear: the code is the `latent_vector` layer."""
  latent_dim: int = 64

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    x = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    return nn.Dense(self.latent_dim, name="latent_vector")(x)


class DenseDecoder(nn.Module):
  """Dense(H*W*C) -> reshape; returns logits (the sigmoid is applied at the edge)."""
  image_shape: Sequence[int] = IMAGE_SHAPE

  @nn.compact
  def __call__(self, z_BxK: jax.Array) -> jax.Array:
    size = 1
    for d in self.image_shape:
      size *= d
    x = nn.Dense(size, name="output")(z_BxK)
    return x.reshape(z_BxK.shape[0], *self.image_shape)


class ConvEncoder(nn.Module):
  """Conv16 -> pool -> Conv8 -> pool -> Conv8 -> pool: 28x28x1 -> code (4, 4, 8)."""

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    if tuple(x_BxHxWxC.shape[1:]) != IMAGE_SHAPE:
      raise ValueError(f"ConvEncoder takes 28x28x1 images, got {x_BxHxWxC.shape[1:]}")
    x = x_BxHxWxC
    for i, features in enumerate((16, 8, 8)):
      x = nn.relu(nn.Conv(features, (3, 3), padding="SAME", name=f"conv{i}")(x))
      x = max_pool_2x2(x)
    return x


class ConvDecoder(nn.Module):
  """Conv8 -> up -> Conv8 -> up -> Conv16 (valid, 16->14) -> up -> Conv1: code -> 28x28x1 logits."""

  @nn.compact
  def __call__(self, z_Bx4x4x8: jax.Array) -> jax.Array:
    x = z_Bx4x4x8
    x = upsample_2x(nn.relu(nn.Conv(8, (3, 3), padding="SAME", name="conv0")(x)))
    x = upsample_2x(nn.relu(nn.Conv(8, (3, 3), padding="SAME", name="conv1")(x)))
    x = upsample_2x(nn.relu(nn.Conv(16, (3, 3), padding="VALID", name="conv2")(x)))
    return nn.Conv(1, (3, 3), padding="SAME", name="conv3")(x)


class Autoencoder(nn.Module):
  """decoder(encoder(x)). Params have top-level `encoder` and `decoder` subtrees.

  `__call__` returns logits (for the loss); `decode` and `reconstruct` return images in [0, 1].
  """
  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decoder(self.encoder(x))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array) -> jax.Array:
    return nn.sigmoid(self.decoder(z))

  def reconstruct(self, x: jax.Array) -> jax.Array:
    return nn.sigmoid(self(x))


MODELS = ("dense", "conv")


def make_encoder(model: str, latent_dim: int = 64) -> nn.Module:
  if model == "dense":
    return DenseEncoder(latent_dim=latent_dim)
  if model == "conv":
    return ConvEncoder()
  raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")


def make_decoder(model: str, image_shape: Sequence[int] = IMAGE_SHAPE) -> nn.Module:
  if model == "dense":
    return DenseDecoder(image_shape=tuple(image_shape))
  if model == "conv":
    return ConvDecoder()
  raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")


def make_autoencoder(model: str, latent_dim: int = 64,
                     image_shape: Sequence[int] = IMAGE_SHAPE) -> Autoencoder:
  """Builds the lecture's autoencoder of kind `model` ('dense' or 'conv')."""
  return Autoencoder(encoder=make_encoder(model, latent_dim),
                     decoder=make_decoder(model, image_shape))


def code_shape(model: str, latent_dim: int = 64) -> tuple[int, ...]:
  """Shape of one image's code (without the batch axis)."""
  return (latent_dim,) if model == "dense" else (4, 4, 8)
