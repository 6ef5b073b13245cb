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

`GaussianEncoder` is the base of such encoders (the draw, the prior, the KL term): a new
Gaussian encoder subclasses it and defines `posterior`; its `prior` field takes any prior of
ae_jax/models/priors.py (a VampPrior: configs/vamp.py), its `kl` field the closed-form or
the sampled KL (configs/iwae.py), and a subclass may report other terms in its place
(`regularize`: the beta-TC-VAE's, ae_jax/models/beta_tc_vae.py).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, linear, priors
from ae_jax.models.priors import LOG_2PI, log_normal  # noqa: F401  (the tools' names)


def kl_to_standard_normal(mean_BxK: jax.Array, logvar_BxK: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)) per image, in nats, summed over the latent dims."""
  return 0.5 * jnp.sum(jnp.exp(logvar_BxK) + jnp.square(mean_BxK) - 1.0 - logvar_BxK, axis=-1)




class GaussianEncoder(nn.Module):
  """The base of encoders that give q(z|x) = N(mean, diag(exp(logvar))): a subclass defines
  `posterior(x) -> (mean, logvar)` ([B, latent_dim] each, float32) and a `latent_dim` field;
  this class draws the code and reports the regularizer (`regularize`, by default the KL).

  `prior` is a config group naming p(z) (ae_jax/models/priors.py; None: N(0, I)), a
  submodule of its own (`latent_prior`). `kl` is how the KL term is computed: 'analytic'
  (the closed form, N(0, I) only) or 'sampled' (log q(z|x) - log p(z) at the draw, a
  single-sample estimate: what a VampPrior needs, and what an importance-weighted
  objective needs, whose log-mean-exp over draws takes each draw's own value); None: the
  closed form where there is one.
  """
  prior: Mapping | None = None
  kl: str | None = None
  image_shape: Sequence[int] = (28, 28, 1)

  def __post_init__(self):
    priors.check_spec(self.prior)
    if self.kl not in (None, "analytic", "sampled"):
      raise checks.BadField("kl", "None, 'analytic' or 'sampled'")
    if self.kl == "analytic" and not priors.is_standard_normal(self.prior):
      raise checks.BadField("kl", "'sampled' (or None) with a prior other than N(0, I): "
                            "only N(0, I) has the KL in closed form")
    checks.image_shape(self)
    super().__post_init__()

  @classmethod
  def terms_per_draw(cls, spec: Mapping) -> bool:
    """Whether its terms are estimates at the draw (the KL sampled), as an importance-
    weighted objective needs (config_lib.validate asks, with importance_samples > 1)."""
    return (spec.get("kl") == "sampled" or
            (spec.get("kl") is None and not priors.is_standard_normal(spec.get("prior"))))

  @property
  def kl_form(self) -> str:
    return self.kl or ("analytic" if priors.is_standard_normal(self.prior) else "sampled")

  def setup(self):
    self.latent_prior = priors.build(self.prior, self.latent_dim, self.image_shape)

  def posterior(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    raise NotImplementedError

  def log_prior(self, z_BxD: jax.Array) -> jax.Array:
    """log p(z) per code, nats."""
    return self.latent_prior.log_prob(z_BxD, self.posterior)

  def sample_prior(self, key: jax.Array, num: int) -> jax.Array:
    """[num, latent_dim] draws from p(z)."""
    return self.latent_prior.sample(key, num, self.posterior)

  def regularize(self, z: jax.Array, mean: jax.Array, logvar: jax.Array) -> None:
    """Reports the loss terms of the code: here `kl` per image (see `kl`)."""
    if self.kl_form == "analytic":
      kl = kl_to_standard_normal(mean, logvar)
    else:
      kl = log_normal(z, mean, logvar) - self.log_prior(z)
    self.sow("losses", "kl", kl)

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    mean, logvar = self.posterior(x_BxHxWxC)
    if self.has_rng("sample"):
      eps = jax.random.normal(self.make_rng("sample"), mean.shape, jnp.float32)
      z = mean + jnp.exp(0.5 * logvar) * eps
    else:
      z = mean
    self.regularize(z, mean, logvar)
    return z.astype(getattr(self, "dtype", jnp.float32))


class VAEEncoder(GaussianEncoder):
  """Flatten -> Dense(h) + activation for each h in `hidden` -> heads `mean` and `logvar`
  (Dense(latent_dim) each). Returns a draw from q(z|x) given the 'sample' RNG stream, the
  mean without it; sows the loss term `kl` per image."""
  hidden: Sequence[int] = (500,)
  latent_dim: int = 20
  activation: str = "relu"
  kernel_init: str = "lecun_normal"  # Flax's; 'torch' PyTorch's (checks.INITIALIZERS)
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32
  SCAN_ON_CPU = True  # see train._steps_per_call

  def __post_init__(self):
    checks.positive_ints(self, "hidden")
    checks.positive_int(self, "latent_dim")
    checks.activation(self, "activation")
    checks.initializer(self)
    super().__post_init__()

  def setup(self):
    super().setup()
    self.layers = [linear.dense(h, self.kernel_init, self.dtype, name=f"hidden{i}")
                   for i, h in enumerate(self.hidden)]
    self.mean_head = linear.dense(self.latent_dim, self.kernel_init, self.dtype, name="mean")
    self.logvar_head = linear.dense(self.latent_dim, self.kernel_init, self.dtype,
                                    name="logvar")

  def posterior(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) of q(z|x), each [B, latent_dim], float32."""
    act = checks.ACTIVATIONS[self.activation]
    x = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    for layer in self.layers:
      x = act(layer(x))
    return (self.mean_head(x).astype(jnp.float32), self.logvar_head(x).astype(jnp.float32))


def is_gaussian_encoder(cls: type) -> bool:
  """Whether an encoder class gives q(z|x) (a `posterior` method), as the VAE's does."""
  return callable(getattr(cls, "posterior", None))
