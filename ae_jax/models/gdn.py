"""Generalized divisive normalization (Ballé et al. 2016, arXiv:1511.06281), the
nonlinearity of the learned codecs' transforms:

    GDN:   y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
    IGDN:  y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)     (its approximate inverse)

over the channels (last axis) of each position. It Gaussianizes local image statistics
far better than a pointwise nonlinearity, which is why g_a/g_s of Ballé 2017/2018 and
Minnen 2018 are built from it (CompressAI's `GDN`, tensorflow-compression's `GDN`).

beta and gamma must stay non-negative (beta > 0, or the division blows up). As both
reference libraries do, each is stored as p = sqrt(value + pedestal) and read back as
    value = max(p, sqrt(minimum + pedestal))^2 - pedestal,   pedestal = offset^2,
offset = 2^-18: the square slows learning near zero, and the lower bound keeps the value
at or above `minimum` (1e-6 for beta, 0 for gamma) while still letting a gradient that
would raise p through (the `_floor` of entropy.py, CompressAI's `LowerBound`).
Initialised to beta = 1, gamma = 0.1 I (the references' defaults).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models.entropy import _floor

REPARAM_OFFSET = 2.0**-18
PEDESTAL = REPARAM_OFFSET**2


def nonnegative_init(value: jax.Array) -> jax.Array:
  """The stored parameter p of a non-negative `value` (its inverse: `nonnegative`)."""
  return jnp.sqrt(jnp.maximum(value + PEDESTAL, PEDESTAL))


def nonnegative(p: jax.Array, minimum: float = 0.0) -> jax.Array:
  """The value a stored parameter p stands for: >= minimum, differentiable in p."""
  bound = (minimum + PEDESTAL) ** 0.5
  return jnp.square(_floor(p, bound)) - PEDESTAL


class GDN(nn.Module):
  """GDN over the last axis (any leading axes); `inverse=True` gives IGDN."""
  inverse: bool = False
  beta_min: float = 1e-6
  gamma_init: float = 0.1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    beta = self.param("beta", lambda _, s: nonnegative_init(jnp.ones(s)), (c,))
    gamma = self.param("gamma", lambda _, s: nonnegative_init(self.gamma_init * jnp.eye(s[0])),
                       (c, c))
    beta = nonnegative(beta, self.beta_min).astype(self.dtype)
    gamma = nonnegative(gamma).astype(self.dtype)
    x = x.astype(self.dtype)
    # norm_i = beta_i + sum_j gamma[i, j] x_j^2: a 1x1 convolution of x^2 (CompressAI's
    # weight layout, out = i, in = j).
    norm = jnp.einsum("...j,ij->...i", jnp.square(x), gamma) + beta
    return x * (jnp.sqrt(norm) if self.inverse else jax.lax.rsqrt(norm))
