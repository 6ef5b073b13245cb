"""Layers the lecture's conv model is built from, in the forms XLA:CPU runs fastest.

Each fast form has the same parameters (names, shapes, initializers) and the same values
to float rounding as the plain Flax layer it stands for (tests/test_models.py).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, Keras 'same' padding (odd sizes pad at the end).

  Same values as `nn.max_pool(x, (2, 2), (2, 2), 'SAME')`, written as pad + reshape +
  pairwise `maximum`: XLA:CPU differentiates this far faster than the select-and-scatter
  of `reduce_window` or the tie-splitting gradient of a `max` reduction (the whole conv
  train step drops from ~49 to ~37 ms at batch 128: benchmarks/conv_ops.py, removed; read
  it at commit 83c9b83).
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


def _cast(dtype, *xs):
  """`xs` in the compute dtype (no operation where they already are)."""
  return [x if x.dtype == dtype else x.astype(dtype) for x in xs]


def _conv3x3_params(module: nn.Module, cin: int, features: int):
  """The kernel and bias of `nn.Conv(features, (3, 3))`: the same names, shapes and
  initializers, so checkpoints and inits are interchangeable with it."""
  kernel = module.param("kernel", nn.linear.default_kernel_init, (3, 3, cin, features))
  bias = module.param("bias", nn.initializers.zeros_init(), (features,))
  return kernel, bias


class PatchConv(nn.Module):
  """`nn.Conv(features, (3, 3), padding="SAME")` as im2col: the 9 shifted copies of the
  input side by side, times the kernel as a (9 * C, features) matrix.

  For the encoder's first layer, whose input (the image) needs no gradient: the kernel's
  gradient is then one matmul, and XLA:CPU runs the conv train step ~1.3x faster than
  with its 1-channel convolution (benchmarks/conv_ops.py, removed; read it at commit
  83c9b83). Same parameters as the nn.Conv.
  """
  features: int
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    _, h, w, cin = x_BxHxWxC.shape
    kernel, bias = _conv3x3_params(self, cin, self.features)
    x_BxHxWxC, kernel, bias = _cast(jnp.dtype(self.dtype), x_BxHxWxC, kernel, bias)
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
  faster (benchmarks/conv_ops.py, removed; read it at commit 83c9b83): the convs run on 4x
  fewer pixels with 4x more outputs, and the 4x larger upsampled tensor and its gradient
  are never formed.
  """
  features: int
  padding: str = "SAME"  # "SAME" or "VALID", as the conv over the upsampled image
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    b, h, w, cin = x_BxHxWxC.shape
    kernel, bias = _conv3x3_params(self, cin, self.features)
    m = jnp.asarray(_phase_taps(self.padding))
    taps = m.shape[1]
    k = jnp.einsum("rda,seb,abio->deirso", m, m, kernel)
    k = k.reshape(taps, taps, cin, 4 * self.features)
    x_BxHxWxC, k, bias = _cast(jnp.dtype(self.dtype), x_BxHxWxC, k, bias)
    pad = ((1, 1), (1, 1)) if self.padding == "SAME" else ((0, 0), (0, 0))
    y = jax.lax.conv_general_dilated(x_BxHxWxC, k, (1, 1), pad,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    _, ho, wo, _ = y.shape
    y = y.reshape(b, ho, wo, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * ho, 2 * wo, self.features) + bias
