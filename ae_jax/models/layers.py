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

from ae_jax.models import linear


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, Keras 'same' padding (odd sizes pad at the end).

  Same values as `nn.max_pool(x, (2, 2), (2, 2), 'SAME')`, written as pad + reshape +
  pairwise `maximum`: XLA:CPU differentiates this far faster than the select-and-scatter
  of `reduce_window` or the tie-splitting gradient of a `max` reduction (the whole conv
  train step drops from ~49 to ~37 ms at batch 128: benchmarks/conv_ops.py, removed; read
  it at commit 83c9b83). Named `max_pool` in profiles (benchmarks/profile_step.py).
  """
  with jax.named_scope("max_pool"):
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
  with jax.named_scope("upsample"):
    return jnp.repeat(jnp.repeat(x_BxHxWxC, 2, axis=1), 2, axis=2)


def _phases(k: jax.Array, axis: int) -> jax.Array:
  """A kernel's 3 taps along `axis` as the 2 taps of each of 2 output phases; the taps stay
  on `axis`, the phase axis is the next one.

  A 3-tap conv over a 2x nearest-upsampled signal u (u[2m] = u[2m+1] = x[m]) is, at each
  output parity, a 2-tap conv of x whose taps are the kernel's taps summed where they read
  the same sample of x: phases (tap 0 + tap 1, tap 2) and (tap 0, tap 1 + tap 2), in that
  order. Written as slices and sums, so the kernel's gradient is too, not the matmuls with
  0/1 matrices of `_phase_taps`' einsum.
  """
  t0, t1, t2 = (jax.lax.index_in_dim(k, i, axis, keepdims=False) for i in range(3))
  a, b = jnp.stack([t0 + t1, t2], axis), jnp.stack([t0, t1 + t2], axis)
  return jnp.stack([a, b], axis + 1)


def upsample_conv_kernel(kernel_3x3xIxO: jax.Array) -> jax.Array:
  """The 2x2 kernel `UpsampleConv`'s 2x2 'SAME' form convolves the small image with: 4 * O
  outputs, output group (q, p) (row phase q, column phase p, as `_phases`) holding O."""
  _, _, cin, cout = kernel_3x3xIxO.shape
  k = _phases(_phases(kernel_3x3xIxO, 0), 2)  # d q e p in out
  return k.transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, cin, 4 * cout)


def _phase_taps(padding: str) -> np.ndarray:
  """M[r, d, a] = 1 where tap a (0..2) of a 3x3 kernel, at output row 2m + r of a conv of
  the 2x-upsampled input, reads input row m + d - (1 if SAME else 0) before upsampling."""
  same = padding == "SAME"
  m = np.zeros((2, 3 if same else 2, 3), np.float32)
  for r in range(2):
    for a in range(3):
      m[r, (r + a - same) // 2 + same, a] = 1
  return m


def einsum_upsample_conv_kernel(kernel_3x3xIxO: jax.Array, padding: str) -> jax.Array:
  """The phase kernel of `UpsampleConv`'s other forms (3x3 for 'SAME', 2x2 for 'VALID'), as
  an einsum with the 0/1 matrices of `_phase_taps`: the form the lecture's conv models
  were measured with. Its sums run in another order than `upsample_conv_kernel`'s, so a
  switch moves their figures in the last digits (PSNR 18.77 -> 18.79 dB for
  configs/conv.py): kept where the 2x2 'SAME' form does not pay."""
  _, _, cin, cout = kernel_3x3xIxO.shape
  m = jnp.asarray(_phase_taps(padding))
  taps = m.shape[1]
  k = jnp.einsum("rda,seb,abio->deirso", m, m, kernel_3x3xIxO)
  return k.reshape(taps, taps, cin, 4 * cout)


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
    with jax.named_scope("im2col"):
      xp = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
      patches = jnp.concatenate([xp[:, a:a + h, c:c + w] for a in range(3) for c in range(3)],
                                axis=-1)
    return patches @ kernel.reshape(9 * cin, self.features) + bias


# UpsampleConv('SAME') with at least this many input channels convolves with 2x2 phase
# kernels, with fewer with 3x3 ones (docs/performance.md, benchmarks/step_forms.py).
SAME_2X2_MIN_CHANNELS = 64


class UpsampleConv(nn.Module):
  """`nn.Conv(features, (3, 3), padding)(upsample_2x(x))`, computed without upsampling.

  A 3x3 conv over a nearest-upsampled image is, at each output parity (r, s), a 2x2 conv
  of the small image whose taps are the 3x3 kernel's taps summed where they read the same
  small pixel (`_phases`). So the layer is one conv of the small image with 4 * features
  outputs, one group per parity (`upsample_conv_kernel`), then depth-to-space:
    VALID  row 2m + r reads small rows m, m + 1 for both r: a VALID 2x2 conv, h - 1 rows
           (16 -> 14 in the lecture's decoder);
    SAME   row 2m + r reads small rows m - 1 + r, m + r. With at least
           SAME_2X2_MIN_CHANNELS input channels: a 2x2 conv of the image padded by 1, h + 1
           rows, parity r = 0 read at row m, r = 1 at row m + 1; with the parities stored
           in the order (1, 0), depth-to-space puts output row t at row t + 1, and one slice
           [1 : 2h + 1] finishes the layer. With fewer: a 'SAME' 3x3 conv whose parity
           kernels hold one zero row and column each (9 taps for 4), and no slice.
  The 2x2 kernel does 4/9 of the 3x3 one's multiplications, but its slice costs a pass
  over the output and over its gradient, and which wins flips with the machine's load (the
  2x2 form moves more data, the 3x3 one multiplies more). On the shared 2-core Xeon
  (2026-12-07, interleaved, `python benchmarks/step_forms.py`, docs/performance.md), 2x2
  in every layer against this threshold: conv_wide (input channels 8, 64, 32) 0.86-0.97x,
  the VQ-VAE (16, 32) 0.93-1.21x, the lecture conv (8, 16) 0.92-1.12x; 2x2 from 32 channels
  up: conv_wide 0.91-0.99x, the VQ-VAE 0.93-1.07x (slower in 2 of 3 runs). From 64 up no
  model was slower than with 3x3 everywhere (conv_wide 0.93-0.97x of it, the others the
  same program).
  Same parameters as the `nn.Conv` it stands for (names, shapes, initializers:
  checkpoints and inits are interchangeable), same values to float rounding
  (tests/test_models.py). It runs on 4x fewer pixels and never forms the 4x larger
  upsampled tensor or its gradient: the lecture's conv step ~1.5x faster than the literal
  form (benchmarks/conv_ops.py, removed; read it at commit 83c9b83).
  """
  features: int
  padding: str = "SAME"  # "SAME" or "VALID", as the conv over the upsampled image
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    b, h, w, cin = x_BxHxWxC.shape
    kernel, bias = _conv3x3_params(self, cin, self.features)
    three = self.padding == "SAME" and cin < SAME_2X2_MIN_CHANNELS
    two_same = self.padding == "SAME" and not three
    k = upsample_conv_kernel(kernel) if two_same else einsum_upsample_conv_kernel(
        kernel, self.padding)
    x_BxHxWxC, k, bias = _cast(jnp.dtype(self.dtype), x_BxHxWxC, k, bias)
    if two_same:
      # Padded here, the conv 'VALID': XLA:CPU runs a conv in Eigen only when its padding
      # is one Eigen has ('SAME' or 'VALID' for its kernel size); a 2x2 kernel with the
      # padding (1, 1) took its naive loop emitter, the VQ-VAE step 78 -> 1469 ms.
      x_BxHxWxC = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = jax.lax.conv_general_dilated(x_BxHxWxC, k, (1, 1), "SAME" if three else "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    with jax.named_scope("depth_to_space"):
      _, ho, wo, _ = y.shape
      y = y.reshape(b, ho, wo, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
      y = y.reshape(b, 2 * ho, 2 * wo, self.features)
      if two_same:
        y = y[:, 1:2 * h + 1, 1:2 * w + 1]
    return y + bias


class _Stride2Layer(nn.Module):
  """A stride-2 layer standing for `nn.Conv` or `nn.ConvTranspose` (kernel_size x
  kernel_size, 'SAME'): its fields, and its parameters with their names, shapes and
  initializers, so checkpoints and inits are interchangeable with Flax's layer. Below
  `_min_pixels()` input pixels a subclass computes Flax's form (`_plain`), else its own
  (`_fast`); the bias is added after either."""
  features: int
  kernel_size: int = 5
  dtype: Any = None
  # Flax's (lecun_normal kernel, zero bias), or 'torch': PyTorch's Conv2d / ConvTranspose2d
  # default, kernel and bias U(+-1/sqrt(fan_in)) (CompressAI's layers; linear.inits).
  kernel_init: str = "lecun_normal"
  _transposed = False  # torch counts a transposed conv's fan_in over its outputs

  def _params(self, x_BxHxWxC: jax.Array):
    """(x, kernel, bias) in the compute dtype."""
    k, cin = self.kernel_size, x_BxHxWxC.shape[-1]
    kernel_init, bias_init = linear.inits(
        self.kernel_init, k * k * (self.features if self._transposed else cin))
    kernel = self.param("kernel", kernel_init, (k, k, cin, self.features))
    bias = self.param("bias", bias_init, (self.features,))
    return nn.dtypes.promote_dtype(x_BxHxWxC, kernel, bias, dtype=self.dtype)

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    x_BxHxWxC, kernel, bias = self._params(x_BxHxWxC)
    h, w, cin = x_BxHxWxC.shape[1:]
    if h * w < self._min_pixels():
      taps = [self._taps(n) for n in (h, w)]
      if h * w * cin * taps[0].shape[1] * taps[1].shape[1] * self.features <= DENSE_MAX:
        return _dense(x_BxHxWxC, kernel, *taps) + bias
      return self._plain(x_BxHxWxC, kernel) + bias  # Flax's layer's own computation
    return self._fast(x_BxHxWxC, kernel) + bias


# A small input's layer as one matmul (`_dense`) while its matrix has at most this many
# entries (16 MiB of float32): the hyperprior's h_a and h_s on a 28x28 image's 4x4 y, whose
# convolutions XLA:CPU ran slowly (h_s's 2x2 -> 4x4 transposed conv: 97 ms of a 483 ms
# one-thread step, 77 of them its gradient).
DENSE_MAX = 1 << 22


def _dense(x_BxHxWxC: jax.Array, kernel: jax.Array, taps_h: np.ndarray, taps_w: np.ndarray
           ) -> jax.Array:
  """A stride-2 layer on a small input as x.reshape(B, h*w*C) @ M: M's entry for input
  (i, j, c) and output (p, q, f) is kernel[a, b, c, f], where taps_h[i, p] is one-hot in a
  (all zero where output p does not read input i), taps_w[j, q] in b. M is built by two
  einsums with those static one-hot tables, so its gradient reaches the kernel as matmuls
  (no scatter)."""
  b, h, w, cin = x_BxHxWxC.shape
  out_h, out_w, features = taps_h.shape[1], taps_w.shape[1], kernel.shape[-1]
  with jax.named_scope("dense_matrix"):
    t = jnp.einsum("ipa,abcf->ipbcf", taps_h.astype(kernel.dtype), kernel)
    m = jnp.einsum("jqb,ipbcf->ijcpqf", taps_w.astype(kernel.dtype), t)
    m = m.reshape(h * w * cin, out_h * out_w * features)
  y = jnp.dot(x_BxHxWxC.reshape(b, h * w * cin), m)
  return y.reshape(b, out_h, out_w, features)


def _one_hot_taps(n_in: int, n_out: int, kernel_size: int, tap) -> np.ndarray:
  """[n_in, n_out, kernel_size]: 1 where output t reads input m with tap a = tap(m, t)."""
  table = np.zeros((n_in, n_out, kernel_size), np.float32)
  for m in range(n_in):
    for t in range(n_out):
      a = tap(m, t)
      if 0 <= a < kernel_size:
        table[m, t, a] = 1.0
  return table


def _subpixel_taps(kernel_size: int) -> tuple[list[list[int]], int]:
  """For `lax.conv_transpose(x, k, (2,), 'SAME')` along one axis: ([taps of parity 0, taps
  of parity 1], d_min), where output 2n + r is sum_j k[taps_r[j]] * x[n + d_min + j] and
  tap -1 stands for a zero. The transposed conv is a conv of the 2x zero-dilated input
  padded by (pad_a, pad_b) (lax's 'SAME' for stride 2: pad_a = ceil((k + s - 2) / 2) when
  k > s + 1, else k - 1); output t reads dilated sample t + a - pad_a with tap a, which is
  x[m] where t + a - pad_a = 2m."""
  k, s = kernel_size, 2
  pad_a = k - 1 if s > k - 1 else -(-(k + s - 2) // 2)
  offsets = {r: {(r + a - pad_a) // 2: a for a in range(k) if (r + a - pad_a) % 2 == 0}
             for r in (0, 1)}
  d_min = min(min(o) for o in offsets.values())
  d_max = max(max(o) for o in offsets.values())
  return [[offsets[r].get(d, -1) for d in range(d_min, d_max + 1)] for r in (0, 1)], d_min


# Inputs of fewer pixels than this (the hyper-synthesis' 1x1 and 2x2) keep lax's dilated
# form: there the parity conv measured 3x slower (h_s's 2x2 -> 4x4 layer, 96 -> 144
# channels: 290 vs 98 ms of a 1-thread hyperprior step), from 4x4 up 10-30x faster.
SUBPIXEL_MIN_PIXELS = 16


class SubpixelConvTranspose(_Stride2Layer):
  """`nn.ConvTranspose(features, (k, k), strides=(2, 2), padding="SAME")` as one stride-1
  conv of the small image with 4 * features outputs, then depth-to-space.

  Output pixel (2n + r, 2m + s) of the transposed conv reads only the taps of one parity
  (`_subpixel_taps`: for k = 5, taps (1, 3) at even rows, (0, 2, 4) at odd ones), so each
  of the 4 parities is a small conv of the undilated input (3x3 for k = 5, a zero tap where
  a parity has fewer; below SUBPIXEL_MIN_PIXELS input pixels, lax's dilated form). Same
  parameters as the `nn.ConvTranspose` it stands for (names,
  shapes, initializers), same values to float rounding (tests/test_gdn.py). XLA:CPU ran
  the gradient of the dilated form in a slow loop: in the 1-thread profile of
  configs/hyperprior.py's step the synthesis' last transposed conv took 1.47 s of its
  2.51 s backward, 26x its forward (benchmarks/results/
  20261207-xeon-profile_step-hyperprior-1thread.md).
  """
  _transposed = True

  def _min_pixels(self) -> int:
    return SUBPIXEL_MIN_PIXELS

  def _taps(self, n: int) -> np.ndarray:
    """`_dense`'s table along an axis of n inputs, 2n outputs: output t reads dilated sample
    t + a - pad_a with tap a (`_subpixel_taps`), input m being dilated sample 2m."""
    k = self.kernel_size
    pad_a = k - 1 if 2 > k - 1 else -(-k // 2)
    return _one_hot_taps(n, 2 * n, k, lambda m, t: 2 * m - t + pad_a)

  def _plain(self, x_BxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_transpose(x_BxHxWxC, kernel, (2, 2), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def _fast(self, x_BxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
    b, h, w, cin = x_BxHxWxC.shape
    k = self.kernel_size
    taps, d_min = _subpixel_taps(k)
    size = len(taps[0])
    zero = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap -1: the zero tap
    phases = [zero[np.asarray(taps[r])][:, np.asarray(taps[s])]
              for r in (0, 1) for s in (0, 1)]  # [size, size, cin, features] each
    k_sub = jnp.stack(phases, axis=3).reshape(size, size, cin, 4 * self.features)
    pad = (-d_min, size - 1 + d_min)  # padded here, the conv 'VALID' (Eigen's own form)
    x = jnp.pad(x_BxHxWxC, ((0, 0), pad, pad, (0, 0)))
    y = jax.lax.conv_general_dilated(x, k_sub, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    with jax.named_scope("depth_to_space"):
      y = y.reshape(b, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
      return y.reshape(b, 2 * h, 2 * w, self.features)


# A stride-2 conv on fewer input pixels than this (the hyper-analysis' 4x4 -> 2x2) keeps
# lax's strided form: there the space-to-depth form measured 1.7x slower (34 vs 58 ms of
# a 1-thread hyperprior step); on the analysis' 8x8 -> 4x4 it is 5x faster.
SPACE_TO_DEPTH_MIN_PIXELS = 64


class SpaceToDepthConv(_Stride2Layer):
  """`nn.Conv(features, (k, k), strides=(2, 2), padding="SAME")` as a stride-1 conv of the
  input's space-to-depth: tap a = 2q + p of the kernel reads phase p of the (padded) input
  at offset q, so the layer is a ceil(k/2) x ceil(k/2) conv over 4 * C channels (the
  kernel's taps regrouped by reshapes, a zero tap where k is odd). Its gradients are
  stride-1 convs: XLA:CPU ran the input gradient of the strided form 45x slower than its
  forward (the analysis' last conv in configs/hyperprior.py's step, 1 thread). Below
  SPACE_TO_DEPTH_MIN_PIXELS input pixels, lax's strided form. Same parameters as the `nn.Conv`
  it stands for, same values to float rounding (tests/test_gdn.py)."""
  def _min_pixels(self) -> int:
    return SPACE_TO_DEPTH_MIN_PIXELS

  def _taps(self, n: int) -> np.ndarray:
    """`_dense`'s table along an axis of n inputs, ceil(n/2) outputs: output t reads input
    2t + a - before with tap a ('SAME''s padding before)."""
    k, out = self.kernel_size, -(-n // 2)
    before = max((out - 1) * 2 + k - n, 0) // 2
    return _one_hot_taps(n, out, k, lambda m, t: m - 2 * t + before)

  def _plain(self, x_BxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x_BxHxWxC, kernel, (2, 2), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def _fast(self, x_BxHxWxC: jax.Array, kernel: jax.Array) -> jax.Array:
    b, h, w, cin = x_BxHxWxC.shape
    k = self.kernel_size
    q = -(-k // 2)  # taps per phase

    def pads(n):  # 'SAME''s padding before; after, up to the even length the phases need
      out = -(-n // 2)
      before = max((out - 1) * 2 + k - n, 0) // 2
      return before, 2 * (out + q - 1) - n - before

    (top, bottom), (left, right) = pads(h), pads(w)
    with jax.named_scope("space_to_depth"):
      x = jnp.pad(x_BxHxWxC, ((0, 0), (top, bottom), (left, right), (0, 0)))
      hh, ww = (h + top + bottom) // 2, (w + left + right) // 2
      x = x.reshape(b, hh, 2, ww, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, 4 * cin)
    k2 = jnp.pad(kernel, ((0, 2 * q - k), (0, 2 * q - k), (0, 0), (0, 0)))
    k2 = k2.reshape(q, 2, q, 2, cin, self.features).transpose(0, 2, 1, 3, 4, 5)
    k2 = k2.reshape(q, q, 4 * cin, self.features)
    return jax.lax.conv_general_dilated(x, k2, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
