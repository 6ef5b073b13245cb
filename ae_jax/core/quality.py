"""Image quality of a reconstruction against its original: MSE, PSNR, SSIM and BCE.

The codecs (autoencoder codes, PNG, JPEG) all end as uint8 pictures, so these helpers take
numpy or jax batches [B, H, W, C] of either uint8 (0..255) or floats in [0, 1], and return
one value per image (callers average). MSE, PSNR, BCE and SSIM come from `ae_jax.core.metrics`;
SSIM is dm-pix's (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, k1=0.01, k2=0.03), the
same definition as `tf.image.ssim` and skimage's `structural_similarity(gaussian_weights=True,
use_sample_covariance=False)`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ae_jax.core import metrics

# Keras clips probabilities to [eps, 1 - eps] before its binary cross-entropy: so do we,
# so that a decoded 0 or 1 pixel gives a finite loss.
_BCE_EPS = 1e-7


def to_unit(images) -> jax.Array:
  """float32 images in [0, 1] from uint8 (divided by 255) or float images (unchanged).

  Other integer types are refused: their range is unknown (uint16 PNGs go to 65535)."""
  images = jnp.asarray(images)
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(f"images of dtype {images.dtype}: give uint8 pixels (0..255) or floats "
                     "in [0, 1]")
  return images.astype(jnp.float32)


def _pair(images, target) -> tuple[jax.Array, jax.Array]:
  """Both batches in [0, 1], refused unless their shapes are equal (no broadcasting)."""
  images, target = to_unit(images), to_unit(target)
  if images.shape != target.shape:
    raise ValueError(f"images {images.shape} and target {target.shape} differ in shape: "
                     "give one original per image")
  return images, target


def ssim(images, target, max_value: float = 1.0) -> jax.Array:
  """Structural similarity per image (1 = identical), via dm-pix. Needs H, W >= 11."""
  return _ssim(*_pair(images, target), max_value)


_ssim = jax.jit(metrics.ssim, static_argnums=2)  # dm-pix's SSIM, as training reports it


def mse(images, target) -> jax.Array:
  return metrics.mse(*_pair(images, target))


def psnr(images, target) -> jax.Array:
  """PSNR in dB per image; identical images give 100 dB (metrics.psnr's floor on the MSE)."""
  return metrics.psnr(*_pair(images, target))


def bce(images, target) -> jax.Array:
  """Binary cross-entropy of images in [0, 1] (not logits) against the target, per image."""
  images, target = _pair(images, target)
  p = jnp.clip(images, _BCE_EPS, 1 - _BCE_EPS)
  return metrics.bce_from_logits(jnp.log(p) - jnp.log1p(-p), target)


def report(images, target, batch_size: int = 1000) -> dict[str, float]:
  """Mean MSE, PSNR (dB), SSIM and BCE over a batch, computed `batch_size` images at a time."""
  if np.shape(images) != np.shape(target):
    raise ValueError(f"images {np.shape(images)} and target {np.shape(target)} differ in "
                     "shape: give one original per image")
  sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0, "bce": 0.0}
  n = len(images)
  for start in range(0, n, batch_size):
    a, b = images[start:start + batch_size], target[start:start + batch_size]
    for name, fn in (("mse", mse), ("psnr", psnr), ("ssim", ssim), ("bce", bce)):
      sums[name] += float(jnp.sum(fn(a, b)))
  return {k: v / n for k, v in sums.items()}


def to_uint8(images) -> np.ndarray:
  """Images in [0, 1] as the uint8 pixels a PNG holds (rounded, clipped)."""
  return np.asarray(np.clip(np.rint(np.asarray(images, np.float32) * 255.0), 0, 255), np.uint8)
