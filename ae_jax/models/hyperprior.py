"""The hyperprior codec's encoder (family 'hyperprior'): Ballé et al. 2018's scale
hyperprior (arXiv:1802.01436) and Minnen et al. 2018's mean-scale hyperprior
(arXiv:1809.02736, without its context model) — CompressAI's `bmshj2018-hyperprior` and
`mbt2018-mean`, tensorflow-compression's `bmshj2018.py`.

    y = g_a(x)                       `analysis`: any model-zoo encoder, 'gdn' by default
    z = h_a(y)                       conv 3x3 -> act -> [conv 5x5/2 -> act] ... conv 5x5/2
    ẑ = round(z), coded with a factorized density (the entropy bottleneck of models/entropy.py)
    (σ, μ) = h_s(ẑ)                  [deconv 5x5/2 -> act] ... conv 3x3; σ floored at 0.11
    ŷ = round(y - μ) + μ, coded with N(μ, σ) integrated over unit bins

The scale model (`mean_scale=False`) feeds h_a |y| and predicts σ only (μ = 0), with ReLUs;
the mean-scale model feeds it y itself (the means need the sign) and predicts both, with
leaky ReLUs, h_s widening to 3M/2 then 2M channels as CompressAI's `mbt2018-mean`.
`hyper_levels` stride-2 levels take y to z (2 in both papers); y is padded (its border
replicated) to a multiple of 2^hyper_levels for h_a, and h_s's output cropped back to y's
size, so y's own positions are all that is coded for it.

Training (the 'sample' RNG stream, as every train and eval step passes) replaces rounding
by additive uniform noise on y and z; without it (the compression tools) the code is the
rounded one. The encoder returns the code the decoder (g_s) takes and reports the loss
term `rate` = bits of y under the Gaussian conditional + bits of z under the factorized
density, per image, and the metric `rate_z` (the side information's share). The objective
is CompressAI's lambda * 255^2 * MSE + bpp, divided by lambda * 255^2 * H * W
(configs/hyperprior.py).

h_s lives in the encoder's parameters (the rate needs it in training): decoding a codes
file restores the encoder item too, for h_s only; z's integer tables travel in the file,
y's come from the fixed scale table (ae_jax/compression/latent_coding.py).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, linear
from ae_jax.models.autoencoder import QUANTIZATION
from ae_jax.models.entropy import (SCALE_BOUND, FactorizedDensity, bits, gaussian_likelihood,
                                   lower_bound, prior_pmf)
from ae_jax.models.gdn_transforms import downsample, pad_to_multiple, upsample
from ae_jax.models.wrapping import WrapsEncoder


def _activation(mean_scale: bool):
  return nn.leaky_relu if mean_scale else nn.relu


def _conv3x3(features: int, fan_in_channels: int, kernel_init: str, dtype, name: str):
  """nn.Conv 3x3 'SAME' initialized as `kernel_init` names (linear.inits: 'torch' is
  PyTorch's Conv2d default, kernel and bias U(+-1/sqrt(9 * input channels)))."""
  kernel, bias = linear.inits(kernel_init, 9 * fan_in_channels)
  return nn.Conv(features, (3, 3), padding="SAME", dtype=dtype, kernel_init=kernel,
                 bias_init=bias, name=name)


class HyperAnalysis(nn.Module):
  """h_a: y -> z, `levels` times smaller per side (y padded to a multiple of 2^levels)."""
  features: int
  levels: int
  mean_scale: bool
  dtype: Any = jnp.float32
  kernel_init: str = "lecun_normal"

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    act = _activation(self.mean_scale)
    h = pad_to_multiple(y if self.mean_scale else jnp.abs(y), 2**self.levels)
    h = _conv3x3(self.features, h.shape[-1], self.kernel_init, self.dtype, "conv0")(
        h.astype(self.dtype))
    for i in range(self.levels):
      h = downsample(self.features, 5, self.dtype, f"conv{i + 1}", self.kernel_init)(act(h))
    return h


class HyperSynthesis(nn.Module):
  """h_s: ẑ -> the Gaussian parameters of each value of y: [..., M] scales (scale model),
  or [..., 2M] scales then means (mean-scale model), at 2^levels times ẑ's size."""
  features: int
  levels: int
  mean_scale: bool
  dtype: Any = jnp.float32
  kernel_init: str = "lecun_normal"

  @nn.compact
  def __call__(self, z_hat: jax.Array, y_channels: int) -> jax.Array:
    act = _activation(self.mean_scale)
    h = z_hat.astype(self.dtype)
    for i in range(self.levels):
      last = i == self.levels - 1
      width = (y_channels * 3 // 2 if last else y_channels) if self.mean_scale else self.features
      h = act(upsample(width, 5, self.dtype, f"deconv{i}", self.kernel_init)(h))
    out = _conv3x3(y_channels * (2 if self.mean_scale else 1), h.shape[-1], self.kernel_init,
                   self.dtype, f"conv{self.levels}")(h)
    return out if self.mean_scale else nn.relu(out)


class HyperpriorEncoder(WrapsEncoder, nn.Module):
  """g_a + hyperprior: returns the code ŷ (ỹ in training), reports `rate` (bits/image)."""
  analysis: Mapping = None  # a model-zoo encoder group: {"name": "gdn", ...}
  hyper_features: int = 64  # N of h_a and h_s: z's channels
  hyper_levels: int = 2
  mean_scale: bool = True
  filters: Sequence[int] = (3, 3, 3)  # z's density's CDF net (tfc's; CompressAI's 3,3,3,3)
  init_scale: float = 10.0
  # h_a's and h_s's: Flax's, or 'torch' (PyTorch's conv default, CompressAI's layers); the
  # analysis transform has its own field (analysis.kernel_init)
  kernel_init: str = "lecun_normal"
  image_shape: Sequence[int] = (28, 28, 1)
  dtype: Any = jnp.float32

  def __post_init__(self):
    self.check_inner_group("{'name': 'gdn', 'features': 64, 'latent_channels': 96}")
    if self.analysis["name"] in ("hyperprior", "factorized"):
      raise checks.BadField("analysis", "a transform, not a codec ('gdn', say)")
    checks.positive_int(self, "hyper_features")
    checks.positive_int(self, "hyper_levels")
    if not isinstance(self.mean_scale, bool):
      raise checks.BadField("mean_scale", "True or False")
    checks.positive_ints(self, "filters")
    if not (isinstance(self.init_scale, (int, float)) and self.init_scale > 0):
      raise checks.BadField("init_scale", "a positive number")
    checks.initializer(self)
    checks.image_shape(self)
    self.build_inner(detached=True)  # a bad analysis group is refused at start-up
    super().__post_init__()

  @classmethod
  def size_multiple(cls, spec) -> int | None:
    """Its analysis transform's (h_a pads y itself), or None where that takes one size."""
    from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
    analysis = spec["analysis"]
    hook = getattr(registry.resolve(analysis["name"], "encoder"), "size_multiple", None)
    return None if hook is None else hook(analysis)

  def setup(self):
    self.transform = self.build_inner()
    self.h_a = HyperAnalysis(self.hyper_features, self.hyper_levels, self.mean_scale,
                             self.dtype, self.kernel_init)
    self.h_s = HyperSynthesis(self.hyper_features, self.hyper_levels, self.mean_scale,
                              self.dtype, self.kernel_init)
    self.prior = FactorizedDensity(self.filters, float(self.init_scale))

  def latents(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(y, z) before quantization, float32."""
    y = self.transform(x).astype(jnp.float32)
    return y, self.h_a(y).astype(jnp.float32)

  def gaussian_params(self, z_hat: jax.Array, y_shape: Sequence[int]
                      ) -> tuple[jax.Array, jax.Array]:
    """(scales floored at SCALE_BOUND, means) of y [B, *y_shape] from ẑ (float32)."""
    h, w, m = y_shape
    out = self.h_s(z_hat, m).astype(jnp.float32)[:, :h, :w]
    if self.mean_scale:
      scales, means = out[..., :m], out[..., m:]
    else:
      scales, means = out, jnp.zeros_like(out)
    return lower_bound(scales, SCALE_BOUND), means

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    y, z = self.latents(x_BxHxWxC)
    noisy = self.has_rng(QUANTIZATION)  # training: noise for rounding
    if noisy:
      z_q = z + jax.random.uniform(self.make_rng(QUANTIZATION), z.shape, jnp.float32, -0.5, 0.5)
    else:
      z_q = jnp.round(z)
    scales, means = self.gaussian_params(z_q, y.shape[1:])
    if noisy:
      y_q = y + jax.random.uniform(self.make_rng(QUANTIZATION), y.shape, jnp.float32, -0.5, 0.5)
      values = y_q - means
    else:
      values = jnp.round(y - means)  # the coded symbols: y less its mean, rounded
      y_q = values + means  # (CompressAI's `quantize(y, "symbols", means)` and back)
    bits_z = bits(self.prior(z_q))
    self.sow("losses", "rate", bits(gaussian_likelihood(values, scales)) + bits_z)
    self.sow("metrics", "rate_z", bits_z)
    return y_q

  def pmf(self, lo: int, hi: int) -> jax.Array:
    """[N, hi - lo + 1]: P(ẑ = k) for k = lo..hi per channel of z (tails at the ends)."""
    return prior_pmf(self.prior, lo, hi)


def is_hyperprior(cls: type) -> bool:
  """Whether an encoder class codes y with a Gaussian conditional from a hyperprior (a
  `gaussian_params` method), as this one."""
  return callable(getattr(cls, "gaussian_params", None))
