"""beta-TC-VAE's terms (Chen et al. 2018; ae_jax/models/beta_tc_vae.py, configs/beta_tc_vae.py)
against a direct numpy form of pythae 0.1.2's `BetaTCVAE.loss_function` on fixed inputs."""
import jax
import numpy as np
import pytest

from ae_jax import models
from ae_jax.models import beta_tc_vae
from ae_jax.training import config_lib, objectives
from configs import beta_tc_vae as config_file

N = 1000


def _log_gauss(z, mu, log_var):
  return -0.5 * (np.log(2 * np.pi) + log_var + (z - mu) ** 2 * np.exp(-log_var))


def _logsumexp(a, axis):
  m = a.max(axis=axis, keepdims=True)
  return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _pythae_weights(batch_size, dataset_size):
  """pythae's `_log_importance_weight_matrix`, with numpy's views for torch's."""
  n, m = dataset_size, batch_size - 1
  strat_weight = (n - m) / (n * m)
  w = np.full((batch_size, batch_size), 1 / m)
  w.reshape(-1)[::m + 1] = 1 / n
  w.reshape(-1)[1::m + 1] = strat_weight
  w[m - 1, 0] = strat_weight
  return np.log(w)


def _pythae_terms(z, mu, log_var, use_mss, dataset_size):
  z, mu, log_var = (np.asarray(a, np.float64) for a in (z, mu, log_var))
  b = z.shape[0]
  log_q_z_given_x = _log_gauss(z, mu, log_var).sum(-1)
  log_prior = _log_gauss(z, np.zeros_like(z), np.zeros_like(z)).sum(-1)
  log_q_batch_perm = _log_gauss(z.reshape(b, 1, -1), mu.reshape(1, b, -1),
                                log_var.reshape(1, b, -1))
  if use_mss:
    logiw = _pythae_weights(b, dataset_size)
    log_q_z = _logsumexp(logiw + log_q_batch_perm.sum(-1), -1)
    log_prod_q_z = _logsumexp(logiw.reshape(b, b, -1) + log_q_batch_perm, 1).sum(-1)
  else:
    log_q_z = _logsumexp(log_q_batch_perm.sum(-1), -1) - np.log(b * dataset_size)
    log_prod_q_z = (_logsumexp(log_q_batch_perm, 1) - np.log(b * dataset_size)).sum(-1)
  return {"mutual_info": log_q_z_given_x - log_q_z, "total_correlation": log_q_z - log_prod_q_z,
          "dimension_kl": log_prod_q_z - log_prior}


@pytest.mark.parametrize("sampling", ["mws", "mss"])
def test_the_three_terms_are_pythaes(sampling):
  encoder = {"name": "beta_tc", "hidden": (16,), "latent_dim": 4, "dataset_size": N,
             "sampling": sampling}
  model = models.from_config({"encoder": encoder, "decoder": {"name": "mlp", "hidden": (16,)}},
                             (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1))
  params = model.init(models.shape_rngs(), x)["params"]
  rng = jax.random.key(2)
  _, terms, mets = objectives.apply(model.apply, params, x, rng)
  z = model.apply({"params": params}, x, rngs={"sample": rng}, method="encode")
  mu, log_var = model.apply({"params": params}, x, method=lambda m, x: m.encoder.posterior(x))
  want = _pythae_terms(z, mu, log_var, sampling == "mss", N)
  assert set(terms) == set(want)
  for name, value in want.items():
    np.testing.assert_allclose(terms[name], value, rtol=1e-4, atol=1e-4, err_msg=name)
  # their sum is the single-sample KL, log q(z|x) - log p(z), logged as `kl`
  kl = (_log_gauss(*(np.asarray(a, np.float64) for a in (z, mu, log_var))) -
        _log_gauss(np.asarray(z, np.float64), 0, 0)).sum(-1)
  np.testing.assert_allclose(mets["kl"], kl, rtol=1e-4, atol=1e-4)
  # pythae's loss: recon + alpha MI + beta TC + gamma dim-KL, mean over the batch
  weights = (("dimension_kl", 0.5), ("mutual_info", 2.0), ("total_correlation", 6.0))
  rec = np.arange(6.0)
  got = objectives.total(rec, terms, weights).mean()
  expected = (rec + 2.0 * want["mutual_info"] + 6.0 * want["total_correlation"]
              + 0.5 * want["dimension_kl"]).mean()
  assert float(got) == pytest.approx(expected, rel=1e-4)


def test_the_stratified_weights_are_the_papers():
  w = np.exp(beta_tc_vae.log_importance_weights(4, 10))
  np.testing.assert_allclose(w, np.exp(_pythae_weights(4, 10)), rtol=1e-6)
  a, s, n = 1 / 3, 7 / 30, 1 / 10  # 1/M, (N - M) / (N M), 1/N for B = 4 (M = 3), N = 10
  # (the flat strides of B make columns: 1/N in the first, the stratum weight in the second)
  np.testing.assert_allclose(w, [[n, s, a, a], [n, s, a, a], [s, s, a, a], [n, s, a, a]],
                             rtol=1e-6)


def test_configs_beta_tc_vae():
  config = config_file.get_config()
  config_lib.validate(config)
  assert dict(config.loss_weights) == {"mutual_info": 1.0, "total_correlation": 6.0,
                                       "dimension_kl": 1.0}
