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
import numpy as np

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
  """Nearest-neighbour 2x upsampling (Keras `UpSampling2D(2)`)."""
  return jnp.repeat(jnp.repeat(x_BxHxWxC, 2, axis=1), 2, axis=2)


def _phase_taps(padding: str) -> np.ndarray:
  """M[r, d, a] = 1 where tap a (0..2) of a 3x3 kernel, at output row 2m + r of a conv of
  the 2x-upsampled input, reads input row m + d - (1 if SAME else 0) before upsampling."""
  same = padding == "SAME"
  m = np.zeros((2, 3 if same else 2, 3), np.float32)
  for r in range(2):
    for a in range(3):
      m[r, (r + a - same) // 2 + same, a] = 1
  return m


class PatchConv(nn.Module):
  """`nn.Conv(features, (3, 3), padding="SAME")` as im2col: the 9 shifted copies of the
  input side by side, times the kernel as a (9 * C, features) matrix.

  For the encoder's first layer, whose input (the image) needs no gradient: the kernel's
  gradient is then one matmul, and XLA:CPU runs the conv train step ~1.3x faster than
  with its 1-channel convolution (benchmarks/conv_ops.py). Same parameters as the nn.Conv.
  """
  features: int

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    _, h, w, cin = x_BxHxWxC.shape
    kernel = self.param("kernel", nn.linear.default_kernel_init, (3, 3, cin, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    xp = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate([xp[:, a:a + h, c:c + w] for a in range(3) for c in range(3)],
                              axis=-1)
    return patches @ kernel.reshape(9 * cin, self.features) + bias


class UpsampleConv(nn.Module):
  """`nn.Conv(features, (3, 3), padding)(upsample_2x(x))`, computed without upsampling.

  Every output pixel of a conv over a nearest-upsampled image is a conv of the small
  image: output row 2m + r reads small rows m-1..m+1 (SAME) or m..m+1 (VALID) with the 3x3
  kernel's taps summed per row (`_phase_taps`). So the layer is one conv of the small
  image with a 3x3 (SAME) or 2x2 (VALID) kernel of 4 * features outputs, one group per
  output phase (r, s), then depth-to-space. Same parameters as the `nn.Conv` it stands for
  (names, shapes, initializers: checkpoints and inits are interchangeable), same values
  to float rounding (tests/test_models.py), and on XLA:CPU the conv train step is ~1.5x
  faster (benchmarks/conv_ops.py): the convs run on 4x fewer pixels with 4x more outputs,
  and the 4x larger upsampled tensor and its gradient are never formed.
  """
  features: int
  padding: str = "SAME"  # "SAME" or "VALID", as the conv over the upsampled image

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    b, h, w, cin = x_BxHxWxC.shape
    kernel = self.param("kernel", nn.linear.default_kernel_init, (3, 3, cin, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    m = jnp.asarray(_phase_taps(self.padding))
    taps = m.shape[1]
    k = jnp.einsum("rda,seb,abio->deirso", m, m, kernel)
    k = k.reshape(taps, taps, cin, 4 * self.features)
    pad = ((1, 1), (1, 1)) if self.padding == "SAME" else ((0, 0), (0, 0))
    y = jax.lax.conv_general_dilated(x_BxHxWxC, k, (1, 1), pad,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    _, ho, wo, _ = y.shape
    y = y.reshape(b, ho, wo, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * ho, 2 * wo, self.features) + bias


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
  """Conv16 -> pool -> Conv8 -> pool -> Conv8 -> pool: 28x28x1 -> code (4, 4, 8).

  The first conv is a `PatchConv` (the same maths, faster); `PlainConvEncoder` is the
  literal form, with the same parameters.
  """

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    if tuple(x_BxHxWxC.shape[1:]) != IMAGE_SHAPE:
      raise ValueError(f"ConvEncoder takes 28x28x1 images, got {x_BxHxWxC.shape[1:]}")
    x = max_pool_2x2(nn.relu(PatchConv(16, name="conv0")(x_BxHxWxC)))
    for i in (1, 2):
      x = max_pool_2x2(nn.relu(nn.Conv(8, (3, 3), padding="SAME", name=f"conv{i}")(x)))
    return x


class PlainConvEncoder(nn.Module):
  """The lecture's encoder written literally with nn.Conv: the reference `ConvEncoder` is
  tested and benchmarked against."""

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    x = x_BxHxWxC
    for i, features in enumerate((16, 8, 8)):
      x = max_pool_2x2(nn.relu(nn.Conv(features, (3, 3), padding="SAME", name=f"conv{i}")(x)))
    return x


class ConvDecoder(nn.Module):
  """Conv8 -> up -> Conv8 -> up -> Conv16 (valid, 16->14) -> up -> Conv1: code -> 28x28x1 logits.

  Each "up -> conv" pair is one `UpsampleConv` (the same maths, faster); `PlainConvDecoder`
  is the literal form, with the same parameters.
  """

  @nn.compact
  def __call__(self, z_Bx4x4x8: jax.Array) -> jax.Array:
    x = nn.relu(nn.Conv(8, (3, 3), padding="SAME", name="conv0")(z_Bx4x4x8))
    x = nn.relu(UpsampleConv(8, "SAME", name="conv1")(x))
    x = nn.relu(UpsampleConv(16, "VALID", name="conv2")(x))
    return UpsampleConv(1, "SAME", name="conv3")(x)


class PlainConvDecoder(nn.Module):
  """The lecture's decoder written literally (UpSampling2D then Conv2D): the reference
  `ConvDecoder` is tested and benchmarked against."""

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
