"""Regularized autoencoder, L2 form (Ghosh et al. 2020, "From variational to deterministic
autoencoders"): a deterministic code with an L2 penalty on it, and weight decay on the
decoder; its density is fitted after training (ae_jax/evaluation/density.py, an ex-post
Gaussian mixture that `python -m ae_jax.sample` draws from).

    config.encoder = dict(name="rae", net=dict(name="mlp", hidden=(500,), latent_dim=20))
    config.loss = "sse"; config.loss_weights.code_l2 = 1e-4      # configs/rae.py
    config.weight_decay.decoder = 1e-7

reports `code_l2` = |z|^2 / 2 per image: pythae 0.1.2's `RAE_L2` (embedding_loss, weighed by
embedding_weight) with its decoder optimizer's weight_decay = reg_weight (torch Adam's: wd *
params added to the gradient; config.weight_decay, ae_jax/training/steps.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ae_jax.models.regularized import RegularizedEncoder, flat


class RAEEncoder(RegularizedEncoder):
  """`net`'s code, reporting `code_l2`; it has no prior (`sample` fits one to its codes)."""
  sample_prior = None  # no prior of its own:
  EX_POST_DENSITY = True  # `sample` fits a Gaussian mixture to its training codes

  def regularize(self, z) -> None:
    self.sow("losses", "code_l2", 0.5 * jnp.sum(jnp.square(flat(z)), axis=-1))
