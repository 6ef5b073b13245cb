"""Per-image reconstruction losses and quality metrics.

Each function returns one value per image (shape [B]); callers average. Losses take the
decoder's logits, so BCE uses the numerically stable softplus form.
"""
from __future__ import annotations

import math

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

LOSSES = ("bce", "mse", "bernoulli", "gaussian", "sse")
# The losses that are a negative log-likelihood -log p(x|z) per image, in nats (summed over
# pixels, not averaged): a VAE's ELBO and NLL are in their units. 'bce' and 'mse' are per-
# pixel means, the lecture's losses; 'sse' the squared error summed over pixels (pythae's
# 'mse' reconstruction of its AE, WAE and RAE: configs/wae.py, configs/rae.py).
LIKELIHOODS = ("bernoulli", "gaussian")


def _flat(x_Bx___: jax.Array) -> jax.Array:
  """[B, H*W*C] from [B, H, W, C] images (a free reshape), for the per-pixel maths.

  XLA:CPU vectorizes an elementwise loop along its last axis, which for [B, 28, 28, 1]
  is 1 wide: on the flat [B, 784] the dense step's loss fusions run ~2x faster (jax
  profiler); with `data.device_batch`'s flat gather, the step ~12% (same losses, bit for
  bit: benchmarks/dense_variants.py, removed; read it at commit 83c9b83).
  """
  return x_Bx___.reshape(x_Bx___.shape[0], -1)


def _per_image_mean(x_BxN: jax.Array) -> jax.Array:
  """The mean over all but the batch axis, as a product with a vector of 1/N.

  The same values as `.mean(axis=1)` to float rounding. Written as a matvec because
  XLA:CPU otherwise hands the reduction, with the BCE's elementwise maths fused into it,
  to a YNNPACK reduce fusion when jaxlib's defaults are kept (AE_JAX_KEEP_XLA_FLAGS=1):
  while this was written, the dense train step ran at 7.8-8.7 ms/step that way; as a
  matvec 0.94-1.63 ms, and 0.74-0.82 ms with ae_jax's XLA flag (benchmarks/dense_ops.py,
  removed, read it at commit 83c9b83; benchmarks/results/20261127-dense_ops-bce.txt).
  """
  x = x_BxN.reshape(x_BxN.shape[0], -1)
  # HIGHEST: full float32 on GPUs/TPUs too (their default dot precision is TF32/bf16).
  return jnp.dot(x, jnp.full((x.shape[1],), 1.0 / x.shape[1], x.dtype), precision="highest")


def _log1p_unit(x: jax.Array) -> jax.Array:
  """log(1 + x) for x in [0, 1], as 2 atanh(u) with u = x / (2 + x) in [0, 1/3].

  The odd series u + u^3/3 + ... + u^13/13 leaves a relative error below (1/3)^14 / 15
  ~ 1.4e-8, under float32's rounding: the same values as `jnp.log1p` to ~2e-7 relative
  (tests/test_metrics.py), but a few multiply-adds and one division, which XLA:CPU
  vectorizes: cheaper here than its log1p (part of the BCE's gain in benchmarks/dense_ops.py,
  removed; read it at commit 83c9b83).
  """
  u = x / (2.0 + x)
  u2 = u * u
  series = 1.0 / 13.0
  for k in (11, 9, 7, 5, 3, 1):
    series = series * u2 + 1.0 / k
  return 2.0 * u * series


def _bce_elementwise_fwd(logits, target):
  e = jnp.exp(-jnp.abs(logits))  # in (0, 1]: exp(-|z|) never overflows
  loss = jnp.maximum(logits, 0.0) - logits * target + _log1p_unit(e)
  return loss, (logits, target, e)


def _bce_elementwise_bwd(residuals, g):
  logits, target, e = residuals
  sigmoid = jnp.where(logits >= 0, 1.0, e) / (1.0 + e)  # s(z) from the forward's exp(-|z|)
  return g * (sigmoid - target), -g * logits


@jax.custom_vjp
def _bce_elementwise(logits: jax.Array, target: jax.Array) -> jax.Array:
  return _bce_elementwise_fwd(logits, target)[0]


_bce_elementwise.defvjp(_bce_elementwise_fwd, _bce_elementwise_bwd)


def bce_from_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Binary cross-entropy between images in [0,1] (Keras' `binary_crossentropy`), per image.

  -[t log s(z) + (1-t) log(1-s(z))] = softplus(z) - t z = max(z, 0) - t z + log1p(e^-|z|)
  exactly, and stable for any z: the values of `optax.sigmoid_binary_cross_entropy` to
  float rounding. Its gradient s(z) - t reuses the forward's exp(-|z|) (a custom VJP), so
  the train step computes one exp per pixel instead of two; with `_log1p_unit` and the
  matvec mean, the dense step went from 0.96-1.19 to 0.74-0.82 ms (benchmarks/dense_ops.py,
  removed, read it at commit 83c9b83; three rounds, ae_jax's XLA flag). Being a
  custom VJP, it has reverse-mode derivatives (`jax.grad`) but no forward mode (`jax.jvp`).
  """
  return _per_image_mean(_bce_elementwise(_flat(logits), _flat(target)))


def _per_image_sum(x_BxN: jax.Array) -> jax.Array:
  """The sum over all but the batch axis, as a matvec (see `_per_image_mean`)."""
  x = x_BxN.reshape(x_BxN.shape[0], -1)
  return jnp.dot(x, jnp.ones((x.shape[1],), x.dtype), precision="highest")


def bernoulli_nll(logits: jax.Array, target: jax.Array) -> jax.Array:
  """-log p(x|z) per image in nats for a Bernoulli per pixel with these logits: the BCE
  summed over pixels (the Flax examples/vae loss, the Keras blog's 784 * BCE). On [0, 1]
  intensities, not binarized ones, it is the cross-entropy of the continuous targets, not
  a normalized density: compare its nats between models on the same data, not with NLLs
  on binarized MNIST."""
  return _per_image_sum(_bce_elementwise(_flat(logits), _flat(target)))


def gaussian_nll(logits: jax.Array, target: jax.Array) -> jax.Array:
  """-log p(x|z) per image in nats for N(sigmoid(logits), 1) per pixel: half the summed
  squared error plus N/2 log(2 pi). Unit variance on [0, 1] images makes the reconstruction
  weak beside the KL; a smaller fixed variance s^2 is the same objective as a KL weight
  (loss_weights.kl) of s^2, up to a constant."""
  n = math.prod(target.shape[1:])
  return 0.5 * _per_image_sum(jnp.square(jax.nn.sigmoid(_flat(logits)) - _flat(target))) + (
      0.5 * n * math.log(2 * math.pi))


def sse(logits: jax.Array, target: jax.Array) -> jax.Array:
  """The squared error of sigmoid(logits) against the target, summed over pixels, per image."""
  return _per_image_sum(jnp.square(jax.nn.sigmoid(_flat(logits)) - _flat(target)))


def mse(images: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error per image; both arguments are images in [0, 1]."""
  return _per_image_mean(jnp.square(_flat(images) - _flat(target)))


def psnr(images: jax.Array, target: jax.Array, max_value: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image (images in [0, max_value])."""
  return 10.0 * jnp.log10(max_value**2 / jnp.maximum(mse(images, target), 1e-10))


def reconstruction_loss(kind: str, logits: jax.Array, target: jax.Array) -> jax.Array:
  """The training loss `kind` (one of LOSSES) per image, from the decoder's logits."""
  if kind == "bce":
    return bce_from_logits(logits, target)
  if kind == "mse":
    return mse(jax.nn.sigmoid(logits), target)
  if kind == "bernoulli":
    return bernoulli_nll(logits, target)
  if kind == "gaussian":
    return gaussian_nll(logits, target)
  if kind == "sse":
    return sse(logits, target)
  raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def _gaussian_band(n: int, size: int = 11, sigma: float = 1.5) -> np.ndarray:
  """The [n - size + 1, n] matrix of a 'valid' 1D Gaussian blur (dm-pix's default filter).
  A side shorter than the window (crops of a few pixels) gets the largest odd window that
  fits it: there dm-pix and tf.image.ssim have none to give."""
  size = min(size, n - 1 + n % 2)
  taps = np.exp(-0.5 * ((np.arange(size) - size // 2) / sigma) ** 2)
  taps /= taps.sum()
  band = np.zeros((n - size + 1, n), np.float32)
  for i in range(n - size + 1):
    band[i, i:i + size] = taps
  return band


def _gaussian_blur(z: jax.Array) -> jax.Array:
  """dm-pix's separable 11x11 Gaussian blur ('valid') of [..., H, W, C] images, as two
  products with band matrices instead of its vmapped 1D `jnp.convolve`s: the same weighted
  sums (SSIM equal to ~1e-6), ~10x faster on XLA:CPU (1000 images: 105 -> 11 ms; a dense
  validation of 10,000 images: 1244 -> 153 ms; benchmarks/results/20261127-eval_ops.txt)."""
  rows, cols = _gaussian_band(z.shape[-3]), _gaussian_band(z.shape[-2])
  return jnp.einsum("ih,...hwc,jw->...ijc", rows, z, cols, precision="highest")


def ssim(images: jax.Array, target: jax.Array, max_value: float = 1.0) -> jax.Array:
  """Structural similarity per image (1 = identical): dm-pix's SSIM (11x11 Gaussian, 1.5),
  with its Gaussian blur written as matrix products (`_gaussian_blur`)."""
  return dm_pix.ssim(images, target, max_val=max_value, filter_fn=_gaussian_blur)
