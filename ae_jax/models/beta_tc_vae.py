"""beta-TC-VAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"): a
Gaussian encoder whose KL is split into three terms, each with its own weight,

    mutual_info        I(x; z)          = log q(z|x) - log q(z)          (alpha)
    total_correlation  TC(z)            = log q(z) - sum_j log q(z_j)    (beta)
    dimension_kl       sum_j KL(q(z_j) || p(z_j)) = sum_j log q(z_j) - log p(z)   (gamma)

reported per image (`loss_weights.mutual_info` = alpha, `.total_correlation` = beta,
`.dimension_kl` = gamma; all 1 is the ELBO's KL). The aggregate posterior q(z) and its
marginals are estimated on the minibatch from log q(z_i | x_j) of every pair (i, j):
  * 'mws', minibatch-weighted sampling: log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(B N);
  * 'mss', minibatch-stratified sampling: the same with pythae's (and the paper's code's)
    importance weight matrix in place of 1 / (B N).
N = `dataset_size`, the training split's size. This is pythae 0.1.2's `BetaTCVAE`
(alpha, beta, gamma, use_mss), term for term (tests/test_beta_tc_vae.py). Under MWS N only
shifts the three terms by constants (their gradients do not depend on it).

The sum of the three is also logged as the metric `kl` (log q(z|x) - log p(z) at the draw),
so a run logs its ELBO. The batch terms mix images: on an eval batch padded to
eval_batch_size the padding's codes take part in the real images' estimates.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ae_jax.models import checks
from ae_jax.models.vae import LOG_2PI, VAEEncoder

SAMPLINGS = ("mws", "mss")


def _log_density(z, mean, logvar):
  """Elementwise log N(z; mean, exp(logvar))."""
  return -0.5 * (LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar))


def log_importance_weights(batch_size: int, dataset_size: int) -> np.ndarray:
  """[B, B] log weights of minibatch-stratified sampling (Chen et al.'s code, pythae's
  `_log_importance_weight_matrix`)."""
  n, m = dataset_size, batch_size - 1
  strat = (n - m) / (n * m)
  w = np.full((batch_size, batch_size), 1 / m)
  w.reshape(-1)[::m + 1] = 1 / n
  w.reshape(-1)[1::m + 1] = strat
  w[m - 1, 0] = strat
  return np.log(w).astype(np.float32)


def tc_terms(z_BxD, mean_BxD, logvar_BxD, log_prior_B, dataset_size: int,
             sampling: str = "mws") -> dict[str, jax.Array]:
  """{'mutual_info', 'total_correlation', 'dimension_kl'} per image."""
  b = z_BxD.shape[0]
  log_q_zx = _log_density(z_BxD, mean_BxD, logvar_BxD).sum(-1)
  pairs_BxBxD = _log_density(z_BxD[:, None, :], mean_BxD[None], logvar_BxD[None])
  if sampling == "mws":
    log_q_z = jax.nn.logsumexp(pairs_BxBxD.sum(-1), axis=1) - math.log(b * dataset_size)
    log_prod_q_z = (jax.nn.logsumexp(pairs_BxBxD, axis=1)
                    - math.log(b * dataset_size)).sum(-1)
  else:
    log_w = jnp.asarray(log_importance_weights(b, dataset_size))
    log_q_z = jax.nn.logsumexp(log_w + pairs_BxBxD.sum(-1), axis=1)
    log_prod_q_z = jax.nn.logsumexp(log_w[:, :, None] + pairs_BxBxD, axis=1).sum(-1)
  return {"mutual_info": log_q_zx - log_q_z, "total_correlation": log_q_z - log_prod_q_z,
          "dimension_kl": log_prod_q_z - log_prior_B}


class TCVAEEncoder(VAEEncoder):
  """The `vae` encoder (and its fields, its prior) reporting the three terms above."""
  dataset_size: int = 60000
  sampling: str = "mws"

  def __post_init__(self):
    checks.positive_int(self, "dataset_size")
    checks.one_of(self, "sampling", SAMPLINGS)
    super().__post_init__()

  @classmethod
  def terms_per_draw(cls, spec) -> bool:
    return True  # every term is evaluated at the draw

  def regularize(self, z, mean, logvar) -> None:
    terms = tc_terms(z, mean, logvar, self.log_prior(z), self.dataset_size, self.sampling)
    for name, value in terms.items():
      self.sow("losses", name, value)
    self.sow("metrics", "kl", sum(terms.values()))
