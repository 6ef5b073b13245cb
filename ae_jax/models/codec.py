"""The learned codec's encoder: an analysis transform and an entropy bottleneck (Ballé et
al. 2017, arXiv:1611.01704; factorized prior of Ballé et al. 2018, arXiv:1802.01436).

    config.encoder = dict(name="factorized",
                          analysis=dict(name="mlp", hidden=(512,), latent_dim=96))
    config.decoder = dict(name="mlp", hidden=(512,))      # the synthesis transform
    config.loss = "mse"; config.loss_weights.rate = 1 / (lambda * 255**2 * H * W)

`analysis` is any encoder of the model zoo (a config group, as config.encoder itself:
built-in or the user's own); its output y is the code before quantization, its last axis
the channels of the prior (a flat code: every value its own channel). The encoder returns
  * ỹ = y + u, u ~ U(-1/2, 1/2), given the 'sample' RNG stream (the train and eval steps
    always pass one, a function of (seed, step): exact resumes);
  * ŷ = round(y) without it (`encoder.apply(variables, x)`: the compression tools),
and reports the loss term `rate`, -sum log2 P(ỹ) bits per image under the learned
`FactorizedDensity` (models/entropy.py). The objective, mse + weight * rate, is CompressAI's
lambda * 255^2 * MSE + bpp divided by lambda * 255^2 * H * W (configs/codec.py). The
decoder sees integers at compression time and needs nothing else: the integer tables that
code ŷ (`pmf`, ae_jax/compression/entropy_coding.py) travel in the codes file.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ae_jax.models import checks
from ae_jax.models.autoencoder import QUANTIZATION
from ae_jax.models.entropy import FactorizedDensity, bits, prior_pmf
from ae_jax.models.wrapping import WrapsEncoder

TABLE_RADIUS = 255  # the prior's tables cover the integers -255..255 (the rest is clipped)


class FactorizedPriorEncoder(WrapsEncoder, nn.Module):
  """Analysis transform + factorized entropy bottleneck; reports `rate` (bits/image)."""
  analysis: Mapping = None  # a model-zoo encoder group: {"name": ..., **fields}
  filters: Sequence[int] = (3, 3, 3)  # the prior's CDF network (tfc's and CompressAI's)
  init_scale: float = 10.0
  image_shape: Sequence[int] = (28, 28, 1)
  dtype: Any = jnp.float32

  def __post_init__(self):
    self.check_inner_group("{'name': 'mlp', 'hidden': (512,), 'latent_dim': 96}")
    if self.analysis["name"] == "factorized":
      raise checks.BadField("analysis", "another encoder than 'factorized' itself")
    checks.positive_ints(self, "filters")
    if not (isinstance(self.init_scale, (int, float)) and self.init_scale > 0):
      raise checks.BadField("init_scale", "a positive number")
    if not self.init_scale <= checks.MAX_FLOAT32:  # larger is inf in float32 (NaN tables)
      raise checks.BadField("init_scale", f"a positive number, at most {checks.MAX_FLOAT32:.4g}"
                            " (float32's largest)")
    checks.image_shape(self)
    self.build_inner(detached=True)  # a bad analysis group is refused at start-up
    super().__post_init__()

  def setup(self):
    self.transform = self.build_inner()
    self.prior = FactorizedDensity(self.filters, float(self.init_scale))

  def analyse(self, x: jax.Array) -> jax.Array:
    """y, the code before quantization (float32)."""
    return self.transform(x).astype(jnp.float32)

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    y = self.analyse(x_BxHxWxC)
    if self.has_rng(QUANTIZATION):  # training: noise for rounding
      y = y + jax.random.uniform(self.make_rng(QUANTIZATION), y.shape, jnp.float32, -0.5, 0.5)
    else:
      y = jnp.round(y)
    self.sow("losses", "rate", bits(self.prior(y)))
    return y

  def pmf(self, lo: int, hi: int) -> jax.Array:
    """[C, hi - lo + 1]: P(ŷ = k) for k = lo..hi, channel by channel, the tails below lo
    and above hi added to the end symbols (what entropy_coding.build_tables takes)."""
    return prior_pmf(self.prior, lo, hi)


def has_prior(cls: type) -> bool:
  """Whether an encoder class codes with a learned prior (a `pmf` method), as this one."""
  return callable(getattr(cls, "pmf", None))
