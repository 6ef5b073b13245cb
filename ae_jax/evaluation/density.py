"""An ex-post density of a run's codes (Ghosh et al. 2020): a Gaussian mixture fitted by EM
to the codes of the training split, for autoencoders without a prior of their own (the
RAE, configs/rae.py) to be sampled from (`python -m ae_jax.sample`; pythae's
`GaussianMixtureSampler`, 10 components by default).

The mixture is stored beside the run, WORKDIR/ex_post_density.npz, with the checkpoint it
was fitted to (step and checkpoint id): a later checkpoint, or another number of
components, is fitted again. EM in numpy (float64, full covariances, started from
k-means with k-means++ seeding from a fixed seed, covariances regularized by 1e-6 I as
scikit-learn's `reg_covar`).
"""
from __future__ import annotations

import os

import numpy as np

from ae_jax.core import files
from ae_jax.core.errors import writing

FILE = "ex_post_density.npz"
COMPONENTS = 10


def _log_gauss(x_NxD, mean_KxD, chol_KxDxD):
  """[N, K] log N(x; mean_k, L_k L_k^T)."""
  d = x_NxD.shape[1]
  out = np.empty((x_NxD.shape[0], mean_KxD.shape[0]))
  for k, (mu, chol) in enumerate(zip(mean_KxD, chol_KxDxD)):
    y = np.linalg.solve(chol, (x_NxD - mu).T)  # L^-1 (x - mu)
    out[:, k] = (-0.5 * (y ** 2).sum(0) - np.log(np.diag(chol)).sum()
                 - 0.5 * d * np.log(2 * np.pi))
  return out


def _logsumexp(a, axis):
  m = a.max(axis=axis, keepdims=True)
  return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _kmeans_pp(x, k, rng):
  centers = [x[rng.integers(len(x))]]
  for _ in range(1, k):
    d2 = np.min([((x - c) ** 2).sum(1) for c in centers], axis=0)
    centers.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0
                   else x[rng.integers(len(x))])
  return np.stack(centers)


def fit_gmm(codes_NxD: np.ndarray, components: int = COMPONENTS, iterations: int = 100,
            tol: float = 1e-3, seed: int = 0, reg: float = 1e-6) -> dict:
  """{'weights' [K], 'means' [K, D], 'covariances' [K, D, D], 'log_likelihood' (mean per
  code at the end)} of a K-component mixture fitted by EM."""
  x = np.asarray(codes_NxD, np.float64).reshape(len(codes_NxD), -1)
  n, d = x.shape
  k = min(components, n)
  rng = np.random.default_rng(seed)
  means = _kmeans_pp(x, k, rng)
  for _ in range(30):  # k-means from the k-means++ start, as scikit-learn's init
    nearest = ((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    moved = np.stack([x[nearest == j].mean(0) if np.any(nearest == j) else means[j]
                      for j in range(k)])
    if np.allclose(moved, means):
      break
    means = moved
  resp = np.eye(k)[((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)]
  previous = -np.inf
  for _ in range(iterations):
    # M step (from the responsibilities), then E step
    nk = resp.sum(0) + 10 * np.finfo(float).eps
    weights, means = nk / n, (resp.T @ x) / nk[:, None]
    covs = np.stack([((resp[:, j, None] * (x - means[j])).T @ (x - means[j])) / nk[j]
                     + reg * np.eye(d) for j in range(k)])
    log_p = _log_gauss(x, means, np.linalg.cholesky(covs)) + np.log(weights)
    total = _logsumexp(log_p, 1)
    resp = np.exp(log_p - total[:, None])
    ll = float(total.mean())
    if abs(ll - previous) < tol:
      break
    previous = ll
  return {"weights": weights, "means": means, "covariances": covs, "log_likelihood": ll}


def sample_gmm(gmm: dict, num: int, seed: int = 0) -> np.ndarray:
  """[num, D] float32 draws: a component by its weight, then its Gaussian."""
  rng = np.random.default_rng(seed)
  weights = np.asarray(gmm["weights"], np.float64)
  pick = rng.choice(len(weights), size=num, p=weights / weights.sum())
  chol = np.linalg.cholesky(gmm["covariances"])
  eps = rng.standard_normal((num, gmm["means"].shape[1]))
  return (gmm["means"][pick] + np.einsum("nij,nj->ni", chol[pick], eps)).astype(np.float32)


def load_or_fit(workdir: str, run: dict, codes_fn, components: int = COMPONENTS) -> dict:
  """The mixture stored beside the run for its checkpoint `run` (runs.run_identity), or one
  fitted now to `codes_fn()` (the training split's codes) and stored."""
  path = os.path.join(workdir, FILE)
  stamp = np.array([run["step"], run["checkpoint_id"], components], np.int64)
  if os.path.exists(path):
    with np.load(path) as f:
      if np.array_equal(f["fitted_to"], stamp):
        return {k: f[k] for k in ("weights", "means", "covariances", "log_likelihood")}
  gmm = fit_gmm(codes_fn(), components)
  with writing(FILE, workdir), files.atomic_path(path) as tmp:  # .npz kept: savez adds none
    np.savez(tmp, fitted_to=stamp, **gmm)
  return gmm
