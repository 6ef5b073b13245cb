"""The WAE's MMD (Tolstikhin et al. 2018; ae_jax/models/wae.py, configs/wae.py) against a
direct numpy form of pythae 0.1.2's `WAE_MMD.loss_function` on fixed inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import models
from ae_jax.models import wae
from ae_jax.training import config_lib, objectives
from configs import wae as config_file

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def _pythae_mmd(z, z_prior, kernel, bandwidth, scales, latent_dim):
  z, z_prior = np.asarray(z, np.float64), np.asarray(z_prior, np.float64)
  n = z.shape[0]
  c_base = 2.0 * latent_dim * bandwidth ** 2

  def k(a, b):
    d2 = np.linalg.norm(a[:, None] - b[None], axis=-1) ** 2
    if kernel == "rbf":
      return np.exp(-d2 / c_base)
    return sum(s * c_base / (s * c_base + d2) for s in scales)

  k_z, k_p, k_c = k(z, z), k(z_prior, z_prior), k(z, z_prior)
  mmd_z = (k_z - np.diag(np.diag(k_z))).sum() / ((n - 1) * n)
  mmd_p = (k_p - np.diag(np.diag(k_p))).sum() / ((n - 1) * n)
  return mmd_z + mmd_p - 2 * k_c.sum() / n ** 2


@pytest.mark.parametrize("kernel,bandwidth", [("imq", 1.0), ("imq", 0.3), ("rbf", 1.5)])
def test_the_mmd_is_pythaes(kernel, bandwidth):
  z = jax.random.normal(jax.random.key(0), (7, 5)) * 2 + 0.5
  prior = jax.random.normal(jax.random.key(1), (7, 5))
  got = wae.mmd(z, prior, kernel, bandwidth, SCALES)
  assert float(got) == pytest.approx(_pythae_mmd(z, prior, kernel, bandwidth, SCALES, 5),
                                     rel=1e-5)
  assert float(wae.mmd(prior, prior, kernel, bandwidth, SCALES)) < float(got)


def test_the_model_reports_the_mmd_of_its_codes_against_prior_draws():
  record = {"encoder": {"name": "wae", "net": {"name": "mlp", "hidden": (16,),
                                               "latent_dim": 3}},
            "decoder": {"name": "mlp", "hidden": (16,)}}
  model = models.from_config(record, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1))
  # jitted: eager, each operation compiles alone
  params = jax.jit(model.init)(models.shape_rngs(), x)["params"]  # the same, to the bit
  rng = jax.random.key(3)
  _, terms, _ = jax.jit(lambda p, x: objectives.apply(model.apply, p, x, rng))(params, x)
  # deterministic: no 'sample'
  z = jax.jit(lambda p, x: model.apply({"params": p}, x, method="encode"))(params, x)
  # The prior draws are the wrapper's one make_rng('sample'): recompute them the same way.
  prior = jax.jit(lambda p, x: model.apply(
      {"params": p}, x, rngs={"sample": rng},
      method=lambda m, x: jax.random.normal(m.encoder.make_rng("sample"), (6, 3))))(params, x)
  want = _pythae_mmd(z, prior, "imq", 1.0, SCALES, 3)
  np.testing.assert_allclose(terms["mmd"], np.full(6, want), rtol=1e-5)
  assert set(terms) == {"mmd"}
  _, without = jax.jit(lambda p, x: model.apply({"params": p}, x, mutable=["losses"]))(
      params, x)  # no 'sample': no term
  assert not without


def test_configs_wae():
  config = config_file.get_config()
  config_lib.validate(config)
  assert config.loss == "sse" and config.loss_weights.mmd == 3e-2
  assert config.encoder.kernel == "imq" and config.encoder.kernel_bandwidth == 1.0
