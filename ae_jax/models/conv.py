"""The lecture's convolutional autoencoder: 28x28x1 -> code (4, 4, 8) -> 28x28x1, 4,385
parameters, in the fast forms (`ConvEncoder`, `ConvDecoder`) and written literally
(`PlainConvEncoder`, `PlainConvDecoder`, the references they are tested against).

For other image sizes, widths and depths, see the general net in models/convnet.py.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models.layers import PatchConv, UpsampleConv, max_pool_2x2, upsample_2x

IMAGE_SHAPE = (28, 28, 1)
CODE_SHAPE = (4, 4, 8)


class ConvEncoder(nn.Module):
  """Conv16 -> pool -> Conv8 -> pool -> Conv8 -> pool: 28x28x1 -> code (4, 4, 8).

  The first conv is a `PatchConv` (the same maths, faster); `PlainConvEncoder` is the
  literal form, with the same parameters.
  """
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    if tuple(x_BxHxWxC.shape[1:]) != IMAGE_SHAPE:
      raise ValueError(f"ConvEncoder takes 28x28x1 images, got {x_BxHxWxC.shape[1:]} (the "
                       "general conv net, encoder name 'convnet', takes any size)")
    x = max_pool_2x2(nn.relu(PatchConv(16, dtype=self.dtype, name="conv0")(x_BxHxWxC)))
    for i in (1, 2):
      x = max_pool_2x2(nn.relu(nn.Conv(8, (3, 3), padding="SAME", dtype=self.dtype,
                                       name=f"conv{i}")(x)))
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
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z_Bx4x4x8: jax.Array) -> jax.Array:
    if tuple(z_Bx4x4x8.shape[1:]) != CODE_SHAPE:
      raise ValueError(f"ConvDecoder takes codes of shape {CODE_SHAPE}, got "
                       f"{tuple(z_Bx4x4x8.shape[1:])}")
    x = nn.relu(nn.Conv(8, (3, 3), padding="SAME", dtype=self.dtype, name="conv0")(z_Bx4x4x8))
    x = nn.relu(UpsampleConv(8, "SAME", dtype=self.dtype, name="conv1")(x))
    x = nn.relu(UpsampleConv(16, "VALID", dtype=self.dtype, name="conv2")(x))
    return UpsampleConv(1, "SAME", dtype=self.dtype, name="conv3")(x)


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
