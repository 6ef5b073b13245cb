"""The importance-weighted objective (IWAE, Burda et al. 2016; configs/iwae.py) against a
direct numpy/jnp form of pythae 0.1.2's `IWAE.loss_function` on fixed inputs."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ae_jax import models
from ae_jax.core.errors import UserError
from ae_jax.training import config_lib, objectives
from configs import iwae

K = 4


def _model_and_params():
  record = {"encoder": {"name": "vae", "hidden": (16,), "latent_dim": 3, "kl": "sampled"},
            "decoder": {"name": "mlp", "hidden": (16,)}}
  model = models.from_config(record, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
  # jitted: eager, each operation compiles alone (the same params, to the bit)
  params = jax.jit(model.init)(models.shape_rngs(), x)["params"]
  return model, params, x


def _ours(model, params, x, rng, weights):
  logits, terms, _ = objectives.apply(model.apply, params, x, rng, K)
  rec = objectives.reconstruction("bernoulli", logits, x)
  return objectives.total(rec, terms, weights).mean()


def _draws(model, params, x, rng):
  """The K codes the objective drew (the encoder on the same K keys)."""
  keys = jax.random.split(rng, K)
  return jax.vmap(lambda k: model.apply({"params": params}, x, rngs={"sample": k},
                                        method="encode"))(keys)


def _pythae_log_w(model, params, x, z_KxBxD):
  """pythae's log_w [B, K] = -(recon_loss + KLD) at the draws, its 2 pi terms left out as
  there (they cancel): recon = F.binary_cross_entropy summed over pixels (log clamped at
  -100), log q = sum -0.5 (log_var + (z - mu)^2 / exp(log_var)), log p = -0.5 sum z^2."""
  mu, log_var = model.apply({"params": params}, x, method=lambda m, x: m.encoder.posterior(x))
  recon_x = model.apply({"params": params}, z_KxBxD.reshape(-1, 3), method="decode")
  recon_x = recon_x.reshape(K, x.shape[0], -1)
  xf = x.reshape(1, x.shape[0], -1)
  bce = -(xf * jnp.maximum(jnp.log(recon_x), -100) +
          (1 - xf) * jnp.maximum(jnp.log(1 - recon_x), -100)).sum(-1)
  log_q = (-0.5 * (log_var + (z_KxBxD - mu) ** 2 / jnp.exp(log_var))).sum(-1)
  log_p = -0.5 * (z_KxBxD ** 2).sum(-1)
  kld = -(log_p - log_q)
  return (-(bce + kld)).T


def test_the_objective_is_the_k_sample_bound_with_pythaes_gradient():
  model, params, x = _model_and_params()
  rng = jax.random.key(7)
  weights = objectives.Weights((("kl", 1.0),), K)
  # jitted: eager, each operation compiles alone
  z = jax.jit(lambda p, x, r: _draws(model, p, x, r))(params, x, rng)
  log_w = np.asarray(jax.jit(lambda p, x, z: _pythae_log_w(model, p, x, z))(params, x, z),
                     np.float64)
  m = log_w.max(1, keepdims=True)
  bound = -(m[:, 0] + np.log(np.exp(log_w - m).mean(1)))  # -log (1/K) sum_k w_k
  ours = jax.jit(lambda p, x, r: _ours(model, p, x, r, weights))(params, x, rng)
  assert float(ours) == pytest.approx(bound.mean(), rel=2e-6)
  w_tilde = np.exp(log_w - m) / np.exp(log_w - m).sum(1, keepdims=True)
  pythae_value = -(w_tilde * log_w).sum(1).mean()  # pythae's loss: another value ...
  assert pythae_value != pytest.approx(bound.mean(), rel=1e-3)
  # ... whose gradient is the bound's: -sum_k sg(w~_k) grad log w_k = grad -log mean_k w_k.
  eps = jax.lax.stop_gradient(z)

  def pythae_loss(p):
    mu, log_var = model.apply({"params": p}, x, method=lambda m, x: m.encoder.posterior(x))
    mu0, lv0 = model.apply({"params": params}, x, method=lambda m, x: m.encoder.posterior(x))
    draws = mu + jnp.exp(0.5 * log_var) * (eps - mu0) / jnp.exp(0.5 * lv0)
    lw = _pythae_log_w(model, p, x, draws)
    wt = jax.lax.stop_gradient(jax.nn.softmax(lw, axis=1))
    return -(wt * lw).sum(1).mean()

  ours = jax.jit(jax.grad(lambda p: _ours(model, p, x, rng, weights)))(params)
  theirs = jax.jit(jax.grad(pythae_loss))(params)
  # float32: pythae's BCE takes log(sigmoid(.)), ours the logits (softplus): ~1e-4 apart.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4), ours,
               theirs)


def test_one_draw_is_the_elbo_and_more_draws_tighten_it():
  model, params, x = _model_and_params()
  rng = jax.random.key(3)

  def draws(params, x):  # jitted: eager, each operation compiles alone
    logits, terms, _ = objectives.apply(model.apply, params, x, rng, K)
    return objectives.reconstruction("bernoulli", logits, x), terms
  rec, terms = jax.jit(draws)(params, x)
  per_draw = rec + terms["kl"]  # [K, B]: each draw's -ELBO estimate
  bound = jax.jit(objectives.total, static_argnums=2)(
      rec, terms, objectives.Weights((("kl", 1.0),), K))
  assert bound.shape == (5,)
  assert np.all(bound <= per_draw.mean(0) + 1e-4)  # Jensen: the K-sample bound is tighter
  assert np.all(bound >= per_draw.min(0) - 1e-4)
  one = objectives.total(rec[:1], {"kl": terms["kl"][:1]}, objectives.Weights((), 1))
  np.testing.assert_allclose(one, per_draw[0], rtol=1e-6)


def test_the_sampled_kl_is_log_q_minus_log_p_at_the_draw():
  model, params, x = _model_and_params()
  rng = jax.random.key(5)
  # jitted: eager, each operation compiles alone
  _, terms, _ = jax.jit(lambda p, x: objectives.apply(model.apply, p, x, rng))(params, x)
  z = jax.jit(lambda p, x: model.apply({"params": p}, x, rngs={"sample": rng},
                                       method="encode"))(params, x)
  mu, lv = jax.jit(lambda p, x: model.apply({"params": p}, x,
                                            method=lambda m, x: m.encoder.posterior(x)))(params, x)
  log_q = (-0.5 * (np.log(2 * np.pi) + lv + (z - mu) ** 2 / np.exp(lv))).sum(-1)
  log_p = (-0.5 * (np.log(2 * np.pi) + z ** 2)).sum(-1)
  np.testing.assert_allclose(terms["kl"], log_q - log_p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change,message", [
    ({"loss": "bce"}, "the loss must be a likelihood, not 'bce'"),
    ({"encoder.kl": "analytic"}, "reports it in closed form: set --config.encoder.kl=sampled"),
    ({"importance_samples": 0}, "bad config value importance_samples=0"),
    ({"encoder.kl": "exact"}, None),  # refused by the module, at start-up (test_families)
])
def test_bad_iwae_configs_are_one_line(change, message):
  config = iwae.get_config()
  for key, value in change.items():
    node, *rest = key.split(".")
    if rest:
      config[node][rest[0]] = value
    else:
      config[key] = value
  if message is None:
    return
  with pytest.raises(UserError, match=message.replace("(", r"\(")):
    config_lib.validate(config)


def test_configs_iwae():
  config = iwae.get_config()
  config_lib.validate(config)
  assert objectives.weights_of(config) == objectives.Weights((("kl", 1.0),), 5)
  assert config.encoder.kl == "sampled" and config.loss == "bernoulli"
  assert isinstance(config.weight_decay, ml_collections.ConfigDict)
