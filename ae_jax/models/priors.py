"""Priors p(z) of a Gaussian encoder's code, modules of their own: any encoder that gives
q(z|x) (ae_jax/models/vae.py's `GaussianEncoder`) takes one as its `prior` field, a config
group naming it:

    config.encoder.prior = dict(name="vamp", components=500)   # VampPrior
    config.encoder.prior = None                                 # N(0, I), the default

A prior has `log_prob(z, posterior) -> [B]` (nats) and `sample(key, num, posterior) ->
[num, D]`; `posterior` is the encoder's own `posterior(x) -> (mean, logvar)`, which a prior
built from the encoder (the VampPrior) applies to its pseudo-inputs.

  * `StandardNormal`: N(0, I), no parameters.
  * `VampPrior` (Tomczak & Welling 2018): p(z) = 1/C sum_c q(z | u_c), a mixture of the
    encoder's posteriors at C learned pseudo-inputs u_c. pythae's `VAMP` form: u = hardtanh
    (0, 1) of a linear layer applied to the C x C identity, i.e. clip(W_c + b, 0, 1) with
    W [C, H*W*C] and b [H*W*C] drawn U(-1/sqrt(C), 1/sqrt(C)) as torch's nn.Linear.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks, linear

LOG_2PI = math.log(2 * math.pi)
Posterior = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def log_normal(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(z; mean, diag(exp(logvar))), summed over the last axis (nats)."""
  return -0.5 * jnp.sum(LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)


class StandardNormal(nn.Module):
  """p(z) = N(0, I)."""
  latent_dim: int = 20

  def log_prob(self, z_BxD: jax.Array, posterior: Posterior | None = None) -> jax.Array:
    del posterior
    return log_normal(z_BxD, jnp.zeros_like(z_BxD), jnp.zeros_like(z_BxD))

  def sample(self, key: jax.Array, num: int, posterior: Posterior | None = None) -> jax.Array:
    del posterior
    return jax.random.normal(key, (num, self.latent_dim), jnp.float32)


class VampPrior(nn.Module):
  """p(z) = 1/C sum_c q(z | u_c) over C learned pseudo-inputs u_c of the image's shape."""
  components: int = 500
  latent_dim: int = 20
  image_shape: Sequence[int] = (28, 28, 1)

  def __post_init__(self):
    checks.positive_int(self, "components")
    checks.image_shape(self)
    super().__post_init__()

  @nn.compact
  def pseudo_inputs(self) -> jax.Array:
    """[C, H, W, C'] in [0, 1]."""
    size = math.prod(self.image_shape)
    init = linear.torch_uniform(self.components)
    kernel = self.param("pseudo_inputs", init, (self.components, size))
    bias = self.param("pseudo_bias", init, (size,))
    return jnp.clip(kernel + bias, 0.0, 1.0).reshape(self.components, *self.image_shape)

  def components_of(self, posterior: Posterior) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) [C, D] of the mixture's components: the encoder at the pseudo-inputs."""
    mean, logvar = posterior(self.pseudo_inputs())
    return mean.astype(jnp.float32), logvar.astype(jnp.float32)

  def log_prob(self, z_BxD: jax.Array, posterior: Posterior) -> jax.Array:
    mean_CxD, logvar_CxD = self.components_of(posterior)
    log_pc_BxC = log_normal(z_BxD[..., None, :], mean_CxD, logvar_CxD)
    return jax.nn.logsumexp(log_pc_BxC, axis=-1) - math.log(self.components)

  def sample(self, key: jax.Array, num: int, posterior: Posterior) -> jax.Array:
    """A component drawn uniformly for each of `num` codes, then z ~ q(z | u_c)."""
    mean_CxD, logvar_CxD = self.components_of(posterior)
    pick, noise = jax.random.split(key)
    c = jax.random.randint(pick, (num,), 0, self.components)
    eps = jax.random.normal(noise, (num, mean_CxD.shape[-1]), jnp.float32)
    return mean_CxD[c] + jnp.exp(0.5 * logvar_CxD[c]) * eps


PRIORS = {"normal": StandardNormal, "vamp": VampPrior}


def check_spec(spec: Mapping | None) -> None:
  """Raises checks.BadField('prior', ...) for a prior group this module cannot build."""
  if spec is None:
    return
  if not isinstance(spec, Mapping) or spec.get("name") not in PRIORS:
    raise checks.BadField("prior", f"None (N(0, I)) or a group whose name is one of "
                          f"{tuple(PRIORS)}, e.g. {{'name': 'vamp', 'components': 500}}")
  fields = {"vamp": ("components",), "normal": ()}[spec["name"]]
  extra = sorted(set(spec) - {"name", *fields})
  if extra:
    raise checks.BadField("prior", f"a {spec['name']!r} prior group with the fields "
                          f"{list(fields)} only, not {extra}")
  components = spec.get("components", 1)
  if not (isinstance(components, int) and not isinstance(components, bool) and components >= 1):
    raise checks.BadField("prior.components", "a positive integer")


def build(spec: Mapping | None, latent_dim: int, image_shape: Sequence[int]) -> nn.Module:
  """The prior a config group names (None: N(0, I)), as a submodule named `prior`."""
  if spec is None or spec["name"] == "normal":
    return StandardNormal(latent_dim, name="prior")
  kwargs = {k: v for k, v in spec.items() if k != "name"}
  return VampPrior(latent_dim=latent_dim, image_shape=tuple(image_shape), name="prior",
                   **kwargs)


def is_standard_normal(spec: Mapping | None) -> bool:
  return spec is None or spec.get("name") == "normal"
