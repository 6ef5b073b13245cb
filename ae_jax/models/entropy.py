"""The learned priors of a code: Ballé et al.'s factorized density (arXiv:1802.01436,
appendix 6.1), as tensorflow-compression's and CompressAI's EntropyBottleneck define it,
and the Gaussian conditional of a hyperprior (`gaussian_likelihood`, below).

Each channel c has its own univariate density, given by a learned monotone CDF
    F_c(x) = sigmoid(f_K(... f_1(x))),  f_k(h) = softplus(H_k) h + b_k (+ tanh(a_k) tanh(.))
The probability of the quantized value ŷ = k is the mass of [k - 1/2, k + 1/2]; in
training the code is ỹ = y + u, u ~ U(-1/2, 1/2), whose density is that same mass
function evaluated at ỹ (Ballé et al. 2017, arXiv:1611.01704), so
    rate = -sum log2 P(ỹ)  bits per image
is a differentiable stand-in for the entropy-coded length of round(y).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LIKELIHOOD_BOUND = 1e-9  # P is floored here (its gradient still pushes up, see _floor)


@jax.custom_vjp
def _floor(x: jax.Array, bound: float) -> jax.Array:
  return jnp.maximum(x, bound)


def _floor_fwd(x, bound):
  return jnp.maximum(x, bound), (x, bound)


def _floor_bwd(res, g):
  x, bound = res
  # As CompressAI's LowerBound: below the bound the gradient still flows when it would
  # raise x, so a value stuck at the floor can recover.
  return (jnp.where((x >= bound) | (g < 0), g, 0.0), None)


_floor.defvjp(_floor_fwd, _floor_bwd)
lower_bound = _floor  # max(x, bound) whose gradient still raises a value stuck at the bound


class FactorizedDensity(nn.Module):
  """Per-channel learned CDFs over the last axis of its input (any leading axes)."""
  filters: Sequence[int] = (3, 3, 3)
  init_scale: float = 10.0

  @nn.compact
  def logits_cumulative(self, x: jax.Array) -> jax.Array:
    """logit F_c(x) for x [..., C] (channel c's CDF applied along the last axis)."""
    channels = x.shape[-1]
    dims = (1, *self.filters, 1)
    scale = self.init_scale ** (1.0 / (len(dims) - 1))
    h = x.reshape(-1, channels, 1).astype(jnp.float32)
    for i in range(len(dims) - 1):
      init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
      matrix = self.param(f"matrix{i}", nn.initializers.constant(init),
                          (channels, dims[i + 1], dims[i]))
      bias = self.param(f"bias{i}", nn.initializers.uniform(1.0),
                        (channels, dims[i + 1]))
      h = jnp.einsum("ncf,cgf->ncg", h, nn.softplus(matrix)) + (bias - 0.5)
      if i < len(dims) - 2:
        factor = self.param(f"factor{i}", nn.initializers.zeros, (channels, dims[i + 1]))
        h = h + jnp.tanh(factor) * jnp.tanh(h)
    return h.reshape(x.shape)

  def __call__(self, y: jax.Array) -> jax.Array:
    """P(ŷ) of each value of y [..., C] (the mass of [y - 1/2, y + 1/2]), floored at
    LIKELIHOOD_BOUND."""
    lower = self.logits_cumulative(y - 0.5)
    upper = self.logits_cumulative(y + 0.5)
    # Subtract in the tail where the sigmoids are far from 1 (tfc's and CompressAI's trick).
    sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
    p = jnp.abs(nn.sigmoid(sign * upper) - nn.sigmoid(sign * lower))
    return _floor(p, LIKELIHOOD_BOUND)

  def cdf(self, x: jax.Array) -> jax.Array:
    """F_c(x) for x [..., C]."""
    return nn.sigmoid(self.logits_cumulative(x))


def bits(likelihoods: jax.Array) -> jax.Array:
  """-sum log2 P per image (sum over every axis but the first)."""
  return -jnp.sum(jnp.log2(likelihoods).reshape(likelihoods.shape[0], -1), axis=-1)


def prior_pmf(prior: FactorizedDensity, lo: int, hi: int) -> jax.Array:
  """[C, hi - lo + 1]: P(k) for k = lo..hi under a bound `prior`, channel by channel, the
  tails below lo and above hi added to the end symbols (what the integer tables of
  ae_jax/compression take; they decide what to do with the tails)."""
  # The prior's channels (its parameters' first axis), without running a transform.
  channels = prior.variables["params"]["matrix0"].shape[0]
  k = jnp.arange(lo, hi + 1, dtype=jnp.float32)[:, None] * jnp.ones((1, channels))
  p = prior.cdf(k + 0.5) - prior.cdf(k - 0.5)  # [L, C]
  p = p.at[0].add(prior.cdf(k[:1] - 0.5)[0])
  p = p.at[-1].add(1.0 - prior.cdf(k[-1:] + 0.5)[0])
  return jnp.clip(p, 0.0, 1.0).T


# ------------------------------------------------------------------ Gaussian conditional

# Predicted scales are floored here (CompressAI's GaussianConditional, tfc's
# LocationScaleIndexedEntropyModel): below ~0.11 a unit bin holds all the mass anyway, and
# the coder's scale table starts there (ae_jax/compression/latent_coding.py).
SCALE_BOUND = 0.11


def _std_normal_cdf(x: jax.Array) -> jax.Array:
  return 0.5 * jax.lax.erfc(-x * (2.0**-0.5))


def gaussian_likelihood(values: jax.Array, scales: jax.Array) -> jax.Array:
  """P of each value under N(0, scale) integrated over [v - 1/2, v + 1/2], for values =
  y - mean (the noisy or rounded code less its predicted mean), scales floored at
  SCALE_BOUND and the result at LIKELIHOOD_BOUND. Computed on |v|, in the lower tail,
  where the CDF's difference keeps its precision (CompressAI's form)."""
  scales = _floor(scales.astype(jnp.float32), SCALE_BOUND)
  v = jnp.abs(values.astype(jnp.float32))
  upper = _std_normal_cdf((0.5 - v) / scales)
  lower = _std_normal_cdf((-0.5 - v) / scales)
  return _floor(upper - lower, LIKELIHOOD_BOUND)
