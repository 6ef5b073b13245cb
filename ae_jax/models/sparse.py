"""Sparse autoencoder: an MLP encoder whose code pays an L1 penalty (the Keras blog's
`activity_regularizer=regularizers.l1(10e-5)` on a Dense(32, relu) code).

The encoder reports the penalty; the objective weighs it (`config.loss_weights.l1`,
1e-4 in configs/sparse.py) and adds it to the reconstruction loss.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ae_jax.models.dense import MLPEncoder


class SparseEncoder(MLPEncoder):
  """`MLPEncoder` (default: no hidden layer, a Dense(32, relu) code) that reports, per
  image, the loss term `l1` = sum |code| and the metric `code_mean` = the mean code
  activation (the number the Keras blog compares with and without the penalty)."""
  hidden: Sequence[int] = ()

  def report(self, z_BxK: jax.Array) -> None:
    z = z_BxK.astype(jnp.float32)
    self.sow("losses", "l1", jnp.abs(z).sum(axis=1))
    self.sow("metrics", "code_mean", z.mean(axis=1))
