"""Per-image reconstruction losses and quality metrics.

Each function returns one value per image (shape [B]); callers average. Losses take the
decoder's logits, so BCE uses the numerically stable softplus form.
"""
from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp

LOSSES = ("bce", "mse")


def _per_image_mean(x_BxN: jax.Array) -> jax.Array:
  return x_BxN.reshape(x_BxN.shape[0], -1).mean(axis=1)


def bce_from_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Binary cross-entropy between images in [0,1] (Keras' `binary_crossentropy`), per image.

  -[t log s(z) + (1-t) log(1-s(z))] = softplus(z) - t z exactly, and stable for any z.
  Same values as `optax.sigmoid_binary_cross_entropy`, but XLA:CPU computes softplus
  ~6x faster than optax's log-sigmoid pair (benchmarks/dense_ops.py): for the dense
  model the loss, not the matmuls, was most of the step.
  """
  return _per_image_mean(jax.nn.softplus(logits) - logits * target)


def mse(images: jax.Array, target: jax.Array) -> jax.Array:
  """Mean squared error per image; both arguments are images in [0, 1]."""
  return _per_image_mean(jnp.square(images - target))


def psnr(images: jax.Array, target: jax.Array, max_value: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image (images in [0, max_value])."""
  return 10.0 * jnp.log10(max_value**2 / jnp.maximum(mse(images, target), 1e-10))


def reconstruction_loss(kind: str, logits: jax.Array, target: jax.Array) -> jax.Array:
  """The training loss `kind` ('bce' or 'mse') per image, from the decoder's logits."""
  if kind == "bce":
    return bce_from_logits(logits, target)
  if kind == "mse":
    return mse(jax.nn.sigmoid(logits), target)
  raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def ssim(images: jax.Array, target: jax.Array, max_value: float = 1.0) -> jax.Array:
  """Structural similarity per image (1 = identical): dm-pix's SSIM (11x11 Gaussian, 1.5)."""
  return dm_pix.ssim(images, target, max_val=max_value)
