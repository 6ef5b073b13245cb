"""Variational autoencoder (Kingma & Welling 2014): a Gaussian encoder q(z|x) = N(mean,
diag(exp(logvar))) and any decoder, which returns the logits of the likelihood p(x|z)
(`config.loss`: 'bernoulli' or 'gaussian', summed over pixels, ae_jax/core/metrics.py).

The encoder is the Flax examples/vae one: an MLP (hidden (500,), relu) and two linear
heads, `mean` and `logvar`, of latent_dim. It reports the KL term per image,
KL(q(z|x) || N(0, I)) summed over the latent dims, as the loss term `kl`: the objective
weighs it by `config.loss_weights.kl` (beta; 1 is the ELBO), ramped up over
`config.loss_warmup_steps`.

Its code depends on the 'sample' RNG stream:
  * given (the train and eval steps always pass one, a function of (seed, step): exact
    resumes), it is the reparameterized draw z = mean + exp(logvar / 2) * eps;
  * not given (`encoder.apply(variables, x)` in the compression tools and the restore
    helpers, `Autoencoder.encode` / `reconstruct`), it is the mean: deterministic codes.
`posterior(x)` gives (mean, logvar) for the likelihood estimate (ae_jax/evaluation/likelihood.py).
Any encoder with such a `posterior` method is a VAE encoder to the tools.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks

LOG_2PI = math.log(2 * math.pi)


def kl_to_standard_normal(mean_BxK: jax.Array, logvar_BxK: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)) per image, in nats, summed over the latent dims."""
  return 0.5 * jnp.sum(jnp.exp(logvar_BxK) + jnp.square(mean_BxK) - 1.0 - logvar_BxK, axis=-1)


def log_normal(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(z; mean, diag(exp(logvar))), summed over the last axis (nats)."""
  return -0.5 * jnp.sum(LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)


class VAEEncoder(nn.Module):
  """Flatten -> Dense(h) + activation for each h in `hidden` -> heads `mean` and `logvar`
  (Dense(latent_dim) each). Returns a draw from q(z|x) given the 'sample' RNG stream, the
  mean without it; sows the loss term `kl` per image."""
  hidden: Sequence[int] = (500,)
  latent_dim: int = 20
  activation: str = "relu"
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  SCAN_ON_CPU = True  # see train._steps_per_call

  def __post_init__(self):
    checks.positive_ints(self, "hidden")
    checks.positive_int(self, "latent_dim")
    checks.activation(self, "activation")
    super().__post_init__()

  def setup(self):
    self.layers = [nn.Dense(h, dtype=self.dtype, name=f"hidden{i}")
                   for i, h in enumerate(self.hidden)]
    self.mean_head = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")
    self.logvar_head = nn.Dense(self.latent_dim, dtype=self.dtype, name="logvar")

  def posterior(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) of q(z|x), each [B, latent_dim], float32."""
    act = checks.ACTIVATIONS[self.activation]
    x = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    for layer in self.layers:
      x = act(layer(x))
    return (self.mean_head(x).astype(jnp.float32), self.logvar_head(x).astype(jnp.float32))

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    mean, logvar = self.posterior(x_BxHxWxC)
    self.sow("losses", "kl", kl_to_standard_normal(mean, logvar))
    if not self.has_rng("sample"):
      return mean.astype(self.dtype)
    eps = jax.random.normal(self.make_rng("sample"), mean.shape, jnp.float32)
    return (mean + jnp.exp(0.5 * logvar) * eps).astype(self.dtype)


def is_gaussian_encoder(cls: type) -> bool:
  """Whether an encoder class gives q(z|x) (a `posterior` method), as the VAE's does."""
  return callable(getattr(cls, "posterior", None))
