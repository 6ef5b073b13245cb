"""The VampPrior (Tomczak & Welling 2018; configs/vamp.py, ae_jax/models/priors.py) against
a direct numpy form of pythae 0.1.2's `VAMP._log_p_z` and `loss_function` on fixed inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import models
from ae_jax.evaluation import likelihood
from ae_jax.models import priors
from ae_jax.training import config_lib, objectives
from configs import vamp

C, D = 6, 3


def _model_and_params(kl=None):
  encoder = {"name": "vae", "hidden": (16,), "latent_dim": D,
             "prior": {"name": "vamp", "components": C}}
  if kl:
    encoder["kl"] = kl
  model = models.from_config({"encoder": encoder, "decoder": {"name": "mlp", "hidden": (16,)}},
                             (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
  params = jax.jit(model.init)(models.shape_rngs(), x)["params"]  # the same, to the bit
  return model, params, x


def _posterior(model, params, x):
  # jitted here and below: eager, each operation compiles alone
  return jax.jit(lambda p, x: model.apply({"params": p}, x,
                                          method=lambda m, x: m.encoder.posterior(x)))(params, x)


def _pythae_log_p_z(model, params, z):
  """pythae: x = hardtanh(0, 1)(Linear(C, 784)(eye(C))); (mu, log_var) = encoder(x);
  log p(z) = logsumexp_c sum_d -0.5 (log_var + (z - mu)^2 / exp(log_var)) - log C."""
  prior = params["encoder"]["prior"]
  weight = np.asarray(prior["pseudo_inputs"]).T  # torch's Linear weight: [784, C]
  u = np.clip(np.eye(C) @ weight.T + np.asarray(prior["pseudo_bias"]), 0.0, 1.0)
  mu, log_var = (np.asarray(a, np.float64) for a in
                 _posterior(model, params, jnp.asarray(u, jnp.float32).reshape(C, 28, 28, 1)))
  z = np.asarray(z, np.float64)[:, None, :]
  per_c = (-0.5 * (log_var[None] + (z - mu[None]) ** 2 / np.exp(log_var[None]))).sum(2)
  per_c -= np.log(C)
  m = per_c.max(1, keepdims=True)
  return m[:, 0] + np.log(np.exp(per_c - m).sum(1))


def test_the_kl_is_pythaes_log_q_minus_log_vamp_prior():
  model, params, x = _model_and_params()
  rng = jax.random.key(4)
  _, terms, _ = jax.jit(lambda p, x: objectives.apply(model.apply, p, x, rng))(params, x)
  z = jax.jit(lambda p, x: model.apply({"params": p}, x, rngs={"sample": rng},
                                       method="encode"))(params, x)
  mu, log_var = (np.asarray(a, np.float64) for a in _posterior(model, params, x))
  log_q = (-0.5 * (log_var + (np.asarray(z) - mu) ** 2 / np.exp(log_var))).sum(1)
  kld = -(_pythae_log_p_z(model, params, z) - log_q)
  np.testing.assert_allclose(terms["kl"], kld, rtol=1e-5, atol=1e-5)
  assert set(params["encoder"]["prior"]) == {"pseudo_inputs", "pseudo_bias"}


def test_pseudo_inputs_are_a_clipped_linear_layer_initialized_as_torchs():
  model, params, _ = _model_and_params()
  prior = params["encoder"]["prior"]
  assert prior["pseudo_inputs"].shape == (C, 784) and prior["pseudo_bias"].shape == (784,)
  bound = 1 / np.sqrt(C)  # nn.Linear(C, 784): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  for v in prior.values():
    assert -bound <= float(v.min()) < -0.8 * bound and 0.8 * bound < float(v.max()) <= bound
  u = model.apply({"params": params}, method=lambda m: m.encoder.latent_prior.pseudo_inputs())
  np.testing.assert_array_equal(
      u.reshape(C, -1), np.clip(prior["pseudo_inputs"] + prior["pseudo_bias"], 0, 1))
  assert float(u.min()) == 0.0 and float(u.max()) <= 1.0


def test_draws_from_the_prior_are_its_components_posteriors():
  model, params, _ = _model_and_params()
  z = jax.jit(lambda p, k: model.apply({"params": p}, k, 4000,
                                       method=lambda m, k, n: m.encoder.sample_prior(k, n)))(
      params, jax.random.key(1))
  u = jax.jit(lambda p: model.apply(
      {"params": p}, method=lambda m: m.encoder.latent_prior.pseudo_inputs()))(params)
  mu, log_var = _posterior(model, params, u)
  # a uniform mixture: mean = mean of the means, variance = E[var] + Var[means]
  np.testing.assert_allclose(z.mean(0), mu.mean(0), atol=0.1)
  np.testing.assert_allclose(z.var(0), np.exp(log_var).mean(0) + mu.var(0), rtol=0.1)


def test_the_likelihood_uses_the_runs_prior():
  model, params, x = _model_and_params()
  lw = likelihood._log_weights_fn(model, "bernoulli", 2)({"params": params}, x,
                                                           jax.random.key(0))
  eps = jax.random.normal(jax.random.key(0), (2, 5, D))
  from ae_jax.core import metrics  # pylint: disable=import-outside-toplevel

  @jax.jit
  def densities(params, x):
    mu, log_var = model.apply({"params": params}, x,
                              method=lambda m, x: m.encoder.posterior(x))
    z = mu + jnp.exp(0.5 * log_var) * eps
    logits = model.apply({"params": params}, z.reshape(-1, D), method=lambda m, z: m.decoder(z))
    log_px = -metrics.bernoulli_nll(logits, jnp.tile(x, (2, 1, 1, 1))).reshape(2, 5)
    return z, log_px, priors.log_normal(z, mu, log_var)
  z, log_px, log_q = densities(params, x)
  log_p = _pythae_log_p_z(model, params, z.reshape(-1, D)).reshape(2, 5) - D / 2 * np.log(
      2 * np.pi)  # pythae leaves out the 2 pi of both densities; the NLL needs it
  np.testing.assert_allclose(lw, log_px + log_p - log_q, rtol=1e-5, atol=1e-3)


def test_a_vamp_prior_needs_the_sampled_kl():
  with pytest.raises(Exception, match="'sampled' \\(or None\\) with a prior other than"):
    _model_and_params(kl="analytic")
  config = vamp.get_config()
  config_lib.validate(config)
  assert config.encoder.prior.components == 500
