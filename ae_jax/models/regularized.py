"""The base of encoders that wrap another encoder of the model zoo and regularize its code
(the WAE's MMD, ae_jax/models/wae.py; the RAE's L2, rae.py; the adversarial autoencoder's
discriminator, adversarial.py):

    config.encoder = dict(name="wae", net=dict(name="mlp", hidden=(500,), latent_dim=20))

`net` is any encoder group (built-in or the user's own, as config.encoder itself; built
at start-up, so its bad fields are refused there as `encoder.net.<field>`). The code is
the net's output; for a Gaussian net (one with `posterior`, the `vae` encoder) it is the
draw from q(z|x) given the 'sample' stream and the mean without it, and the net's own KL
is not reported: the wrapper's term takes its place.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks
from ae_jax.models.wrapping import WrapsEncoder


class RegularizedEncoder(WrapsEncoder, nn.Module):
  """`net`'s code; subclasses report their terms in `regularize(z)`."""
  net: Mapping = None  # a model-zoo encoder group: {"name": ..., **fields}
  image_shape: Sequence[int] = (28, 28, 1)
  dtype: Any = jnp.float32
  NAME = "regularized"  # the registry's name, in messages
  INNER = "net"

  def __post_init__(self):
    self.check_inner_group("{'name': 'mlp', 'hidden': (500,), 'latent_dim': 20}")
    checks.image_shape(self)
    self.build_inner(detached=True)  # a bad net group is refused at start-up
    super().__post_init__()

  def setup(self):
    self.transform = self.build_inner()

  def code(self, x: jax.Array) -> jax.Array:
    """The net's code (float32): a Gaussian net's draw, or its mean without 'sample'."""
    if hasattr(self.transform, "posterior"):
      mean, logvar = self.transform.posterior(x)
      if not self.has_rng("sample"):
        return mean
      eps = jax.random.normal(self.make_rng("sample"), mean.shape, jnp.float32)
      return mean + jnp.exp(0.5 * logvar) * eps
    return self.transform(x).astype(jnp.float32)

  def regularize(self, z: jax.Array) -> None:
    raise NotImplementedError

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    z = self.code(x_BxHxWxC)
    self.regularize(z)
    return z.astype(self.dtype)

  def sample_prior(self, key: jax.Array, num: int) -> jax.Array:
    """Draws from the prior the code is pulled to (N(0, I)), shaped as codes: what
    `python -m ae_jax.sample` decodes. Subclasses without a prior (the RAE) have none."""
    shape = self.code(jnp.zeros((1, *self.image_shape), jnp.float32)).shape[1:]
    return jax.random.normal(key, (num, *shape), jnp.float32)


def flat(z: jax.Array) -> jax.Array:
  """[B, D] from codes of any shape."""
  return z.reshape(z.shape[0], -1)
