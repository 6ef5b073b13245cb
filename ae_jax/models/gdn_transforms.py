"""The convolutional analysis and synthesis transforms of the learned codecs (family 'gdn'):
Ballé et al. 2018's g_a / g_s (arXiv:1802.01436), CompressAI's `bmshj2018-*` and
`mbt2018-mean`, with the number of stride-2 levels a field.

    g_a: [conv 5x5/2 (N) -> GDN] x (levels - 1) -> conv 5x5/2 (M)       encoder 'gdn'
    g_s: [deconv 5x5/2 (N) -> IGDN] x (levels - 1) -> deconv 5x5/2 (C)  decoder 'gdn'

CompressAI's six stride-2 levels (four in g_a, two more in the hyperprior) need inputs
divisible by 64; a 28x28 Fashion-MNIST image needs far fewer: levels = 3 gives a 4x4 code
(after padding 28 to 32). Any H x W works: g_a pads its input at the bottom and right to a
multiple of 2^levels (replicating the border, which costs fewer bits than a step to zero),
and g_s crops its output back to `image_shape` (the decoder of another size is
`decoder.clone(image_shape=...)`: the parameters do not depend on the size).

The strided layers are made by `downsample` and `upsample` only, so that faster forms of
them (issue #30) replace the plain `nn.Conv` / `nn.ConvTranspose` in one place, with the
same parameter names: `upsample` is `layers.SubpixelConvTranspose`, `downsample`
`layers.SpaceToDepthConv`.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, layers
from ae_jax.models.gdn import GDN


def downsample(features: int, kernel: int, dtype, name: str, kernel_init: str = "lecun_normal"
               ) -> nn.Module:
  """A stride-2 conv, kernel x kernel, SAME padding: H x W -> ceil(H/2) x ceil(W/2).
  `nn.Conv`'s function and parameters, computed as a stride-1 conv of the input's
  space-to-depth (`layers.SpaceToDepthConv`: its input gradient is far faster on XLA:CPU)."""
  return layers.SpaceToDepthConv(features, kernel, dtype=dtype, kernel_init=kernel_init,
                                 name=name)


def upsample(features: int, kernel: int, dtype, name: str, kernel_init: str = "lecun_normal"
             ) -> nn.Module:
  """A stride-2 transposed conv, kernel x kernel, SAME padding: H x W -> 2H x 2W.
  `nn.ConvTranspose`'s function and parameters, computed as a conv of the small image per
  output parity (`layers.SubpixelConvTranspose`: its gradient is ~7x faster on XLA:CPU)."""
  return layers.SubpixelConvTranspose(features, kernel, dtype=dtype, kernel_init=kernel_init,
                                      name=name)


def pad_to_multiple(x_BxHxWxC: jax.Array, multiple: int) -> jax.Array:
  """x padded at the bottom and right, by replicating its last row and column, to H and W
  that are multiples of `multiple`."""
  _, h, w, _ = x_BxHxWxC.shape
  ph, pw = -h % multiple, -w % multiple
  if not (ph or pw):
    return x_BxHxWxC
  return jnp.pad(x_BxHxWxC, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def _check(module: nn.Module) -> None:
  checks.positive_int(module, "features")
  checks.positive_int(module, "levels")
  checks.positive_int(module, "kernel_size")
  checks.initializer(module)


class GDNAnalysis(nn.Module):
  """g_a: image [B, H, W, C] -> y [B, ceil(H/2^L), ceil(W/2^L), latent_channels]."""
  features: int = 64  # N
  latent_channels: int = 96  # M
  levels: int = 3  # L stride-2 convs
  kernel_size: int = 5
  kernel_init: str = "lecun_normal"  # Flax's; 'torch': PyTorch's conv default (CompressAI's)
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check(self)
    checks.positive_int(self, "latent_channels")
    super().__post_init__()

  @property
  def stride(self) -> int:
    """How much smaller y is than the image, per side."""
    return 2**self.levels

  @classmethod
  def size_multiple(cls, spec) -> int:
    """It takes images of any size (padded to a multiple of 2^levels, as evaluation
    pads them: registry.size_multiple)."""
    return 2 ** spec.get("levels", cls.levels)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = pad_to_multiple(x.astype(self.dtype), self.stride)
    for i in range(self.levels - 1):
      h = downsample(self.features, self.kernel_size, self.dtype, f"conv{i}",
                     self.kernel_init)(h)
      h = GDN(dtype=self.dtype, name=f"gdn{i}")(h)
    return downsample(self.latent_channels, self.kernel_size, self.dtype,
                      f"conv{self.levels - 1}", self.kernel_init)(h)


class GDNSynthesis(nn.Module):
  """g_s: y -> logits of an `image_shape` image (2^L times y's size, cropped to it)."""
  features: int = 64  # N
  levels: int = 3
  kernel_size: int = 5
  kernel_init: str = "lecun_normal"  # Flax's; 'torch': PyTorch's conv default (CompressAI's)
  image_shape: Sequence[int] = (28, 28, 1)
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check(self)
    checks.image_shape(self)
    super().__post_init__()

  @classmethod
  def size_multiple(cls, spec) -> int:
    """Built for any `image_shape`, with the same parameters (see GDNAnalysis')."""
    return 2 ** spec.get("levels", cls.levels)

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    height, width, channels = self.image_shape
    if y.shape[1] * 2**self.levels < height or y.shape[2] * 2**self.levels < width:
      raise ValueError(f"a code of {y.shape[1]}x{y.shape[2]} positions decodes to at most "
                       f"{y.shape[1] * 2**self.levels}x{y.shape[2] * 2**self.levels} "
                       f"pixels, not {height}x{width}")
    h = y.astype(self.dtype)
    for i in range(self.levels - 1):
      h = upsample(self.features, self.kernel_size, self.dtype, f"deconv{i}",
                   self.kernel_init)(h)
      h = GDN(inverse=True, dtype=self.dtype, name=f"igdn{i}")(h)
    h = upsample(channels, self.kernel_size, self.dtype, f"deconv{self.levels - 1}",
                 self.kernel_init)(h)
    return h[:, :height, :width]
