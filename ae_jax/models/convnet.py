"""A general convolutional autoencoder for any fixed-size H x W x C image.

The encoder halves the resolution once per entry of `features` (a stride-2 conv, or a
conv then a 2x2 max-pool), then a linear conv to `latent_channels` gives the code,
(ceil(H / 2^d), ceil(W / 2^d), latent_channels) for d stages. The decoder mirrors it,
doubling the resolution once per entry and cropping to the encoder's size at that depth
(4 -> 8, kept as 7 -> 14 -> 28), then maps to the image's channels: any H x W works. Its upsampling is one of
  'nearest'   nearest-neighbour 2x, then a conv (with 3x3 kernels computed as the
              lecture model's `UpsampleConv`: the same maths without forming the large
              image, the fastest form on XLA:CPU);
  'subpixel'  a conv to 4x the features, then depth-to-space (Shi et al. 2016);
  'transpose' a stride-2 transposed conv (`nn.ConvTranspose`). On XLA:CPU the train
              step with it is ~2x slower than with 'nearest' (2.2x on the Intel Xeon
              machine, benchmarks/results/20261202-xeon-convnet_forms.md): kept for
              GPU/TPU users and for comparison.

Normalization is 'none', 'layer' or 'group' (GroupNorm with up to 8 groups): layers
without running statistics, so the train state stays (params, opt_state).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks
from ae_jax.models.layers import UpsampleConv, max_pool_2x2, upsample_2x

NORMS = ("none", "layer", "group")
UPSAMPLINGS = ("nearest", "subpixel", "transpose")


def _norm(kind: str, features: int, dtype, name: str):
  if kind == "layer":
    return nn.LayerNorm(dtype=dtype, name=name)
  if kind == "group":
    groups = max(g for g in range(1, 9) if features % g == 0)
    return nn.GroupNorm(num_groups=groups, dtype=dtype, name=name)
  return lambda x: x


def _check_common(module: nn.Module, sampling_field: str, samplings: Sequence[str]) -> None:
  checks.positive_ints(module, "features", allow_empty=False)
  checks.positive_int(module, "kernel_size")
  checks.one_of(module, sampling_field, samplings)
  checks.one_of(module, "norm", NORMS)
  checks.activation(module, "activation")


class ConvNetEncoder(nn.Module):
  """Image -> code: per stage conv(features[i]) + norm + activation at half resolution."""
  features: Sequence[int] = (32, 64, 128)
  latent_channels: int = 8
  kernel_size: int = 3
  downsample: str = "stride"  # 'stride' (stride-2 conv) or 'maxpool' (conv, 2x2 max-pool)
  norm: str = "none"
  activation: str = "relu"
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_common(self, "downsample", ("stride", "maxpool"))
    checks.positive_int(self, "latent_channels")
    super().__post_init__()

  @classmethod
  def size_multiple(cls, spec) -> int:
    """It takes images of any size; a multiple of 2^stages gives every code cell a whole
    2^stages x 2^stages block (evaluation pads to it: registry.size_multiple)."""
    return 2 ** len(spec.get("features", cls.features))

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    act, k = checks.ACTIVATIONS[self.activation], (self.kernel_size, self.kernel_size)
    x = x_BxHxWxC
    for i, f in enumerate(self.features):
      stride = 2 if self.downsample == "stride" else 1
      x = nn.Conv(f, k, strides=stride, padding="SAME", dtype=self.dtype, name=f"conv{i}")(x)
      x = act(_norm(self.norm, f, self.dtype, f"norm{i}")(x))
      if self.downsample == "maxpool":
        x = max_pool_2x2(x)
    return nn.Conv(self.latent_channels, k, padding="SAME", dtype=self.dtype, name="code")(x)


class ConvNetDecoder(nn.Module):
  """Code -> image logits: per stage 2x upsampling to features[i] + norm + activation,
  then a conv to the image's channels, cropped to `image_shape`."""
  features: Sequence[int] = (128, 64, 32)
  kernel_size: int = 3
  upsample: str = "nearest"  # 'nearest' (+ conv), 'subpixel' or 'transpose' (see above)
  norm: str = "none"
  activation: str = "relu"
  image_shape: Sequence[int] = (28, 28, 1)
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_common(self, "upsample", UPSAMPLINGS)
    checks.image_shape(self)
    super().__post_init__()

  @classmethod
  def size_multiple(cls, spec) -> int:
    """Built for any `image_shape`, with the same parameters (see the encoder's)."""
    return 2 ** len(spec.get("features", cls.features))

  @nn.compact
  def __call__(self, z_BxhxwxC: jax.Array) -> jax.Array:
    if z_BxhxwxC.ndim != 4:
      raise ValueError(f"ConvNetDecoder takes codes of shape (h, w, channels), got "
                       f"{tuple(z_BxhxwxC.shape[1:])}")
    act, k = checks.ACTIVATIONS[self.activation], (self.kernel_size, self.kernel_size)
    h, w, c = self.image_shape
    d = len(self.features)
    if -(-h // 2**d) > z_BxhxwxC.shape[1] or -(-w // 2**d) > z_BxhxwxC.shape[2]:
      need = math.ceil(math.log2(max(h / z_BxhxwxC.shape[1], w / z_BxhxwxC.shape[2])))
      raise ValueError(f"ConvNetDecoder makes {z_BxhxwxC.shape[1] * 2**d}x"
                       f"{z_BxhxwxC.shape[2] * 2**d} images from a {z_BxhxwxC.shape[1]}x"
                       f"{z_BxhxwxC.shape[2]} code with {d} stages, smaller than {h}x{w}: "
                       f"give it {need} stages (features), as the encoder has")
    x = z_BxhxwxC
    for i, f in enumerate(self.features):
      x = self._upsample(x, f, k, f"conv{i}")
      # Back to the encoder's size at this depth (28 -> 14 -> 7 -> 4 upsamples to 8, kept
      # as 7): later stages never compute pixels that the crop at the end would drop.
      x = x[:, :-(-h // 2**(d - 1 - i)), :-(-w // 2**(d - 1 - i))]
      x = act(_norm(self.norm, f, self.dtype, f"norm{i}")(x))
    return nn.Conv(c, k, padding="SAME", dtype=self.dtype, name="output")(x)

  def _upsample(self, x: jax.Array, features: int, k: tuple, name: str) -> jax.Array:
    if self.upsample == "transpose":
      return nn.ConvTranspose(features, k, strides=(2, 2), padding="SAME", dtype=self.dtype,
                              name=name)(x)
    if self.upsample == "subpixel":
      y = nn.Conv(4 * features, k, padding="SAME", dtype=self.dtype, name=name)(x)
      b, h, w, _ = y.shape
      y = y.reshape(b, h, w, 2, 2, features).transpose(0, 1, 3, 2, 4, 5)
      return y.reshape(b, 2 * h, 2 * w, features)
    if k == (3, 3):
      return UpsampleConv(features, "SAME", dtype=self.dtype, name=name)(x)
    return nn.Conv(features, k, padding="SAME", dtype=self.dtype, name=name)(upsample_2x(x))
