"""Wasserstein autoencoder, MMD form (Tolstikhin et al. 2018): a deterministic code pulled to
the prior N(0, I) by the maximum mean discrepancy between a batch of codes and a batch of
prior draws, instead of a per-image KL.

    config.encoder = dict(name="wae", net=dict(name="mlp", hidden=(500,), latent_dim=20))
    config.loss = "sse"; config.loss_weights.mmd = 3e-2          # configs/wae.py

The term `mmd` is one number per batch (reported per image, each the batch's value): with
k the kernel, n the batch, z the codes and z~ as many N(0, I) draws (the 'sample' stream),
    MMD = sum_{i!=j} k(z_i, z_j) / (n(n-1)) + sum_{i!=j} k(z~_i, z~_j) / (n(n-1))
          - 2 sum_{i,j} k(z_i, z~_j) / n^2.
Kernels as pythae 0.1.2's `WAE_MMD` (kernel_choice, kernel_bandwidth, scales), with D the
code's size and C = 2 D bandwidth^2:
    'imq'  k(a, b) = sum_s s C / (s C + |a - b|^2) over `scales`;
    'rbf'  k(a, b) = exp(-|a - b|^2 / C).
Without the 'sample' stream (the compression tools) nothing is reported. On an eval batch
padded to eval_batch_size, the padding's codes take part in the batch's MMD.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ae_jax.models import checks
from ae_jax.models.regularized import RegularizedEncoder, flat

KERNELS = ("imq", "rbf")


def _sq_dist(a, b):
  return jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)


def kernel_matrix(a_NxD, b_MxD, kernel: str, bandwidth: float, scales: Sequence[float]):
  c = 2.0 * a_NxD.shape[-1] * bandwidth ** 2
  d2 = _sq_dist(a_NxD, b_MxD)
  if kernel == "rbf":
    return jnp.exp(-d2 / c)
  return sum(s * c / (s * c + d2) for s in scales)


def mmd(z_NxD, prior_NxD, kernel: str = "imq", bandwidth: float = 1.0,
        scales: Sequence[float] = (1.0,)) -> jax.Array:
  """The batch's MMD estimate (a scalar), pythae's form."""
  n = z_NxD.shape[0]
  off = 1.0 - jnp.eye(n, dtype=z_NxD.dtype)
  k_z = kernel_matrix(z_NxD, z_NxD, kernel, bandwidth, scales)
  k_p = kernel_matrix(prior_NxD, prior_NxD, kernel, bandwidth, scales)
  k_zp = kernel_matrix(z_NxD, prior_NxD, kernel, bandwidth, scales)
  return ((k_z * off).sum() + (k_p * off).sum()) / ((n - 1) * n) - 2 * k_zp.sum() / n ** 2


class WAEEncoder(RegularizedEncoder):
  """`net`'s code, reporting `mmd` against N(0, I) draws."""
  kernel: str = "imq"
  kernel_bandwidth: float = 1.0
  scales: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # pythae's default (imq)

  def __post_init__(self):
    checks.one_of(self, "kernel", KERNELS)
    if not (isinstance(self.kernel_bandwidth, (int, float)) and self.kernel_bandwidth > 0):
      raise checks.BadField("kernel_bandwidth", "a positive number")
    if not (isinstance(self.scales, Sequence) and len(self.scales) > 0 and
            all(isinstance(s, (int, float)) and s > 0 for s in self.scales)):
      raise checks.BadField("scales", "a tuple of positive numbers, at least one")
    super().__post_init__()

  def regularize(self, z) -> None:
    if not self.has_rng("sample"):
      return
    z = flat(z)
    prior = jax.random.normal(self.make_rng("sample"), z.shape, jnp.float32)
    value = mmd(z, prior, self.kernel, float(self.kernel_bandwidth),
                tuple(float(s) for s in self.scales))
    self.sow("losses", "mmd", jnp.full((z.shape[0],), value))
