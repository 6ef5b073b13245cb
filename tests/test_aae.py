"""The adversarial autoencoder (ae_jax/models/adversarial.py, configs/aae.py) against pythae
0.1.2's `Adversarial_AE.loss_function` and `AdversarialTrainer._optimizers_step`: the two
losses on fixed inputs, and one train step that updates the autoencoder on its loss and the
discriminator on its own, each with its own Adam."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import models
from ae_jax.core import metrics
from ae_jax.training import config_lib, objectives, steps
from configs import aae as config_file

ALPHA = 0.5


def _setup():
  config = config_file.get_config()
  config.encoder.net.hidden, config.encoder.net.latent_dim = (16,), 3
  config.encoder.discriminator_hidden = (8,)
  config.decoder.hidden = (16,)
  model = models.from_config(config, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1))
  # jitted (eager, each operation compiles alone): the same state, to the bit
  state = jax.jit(lambda rng: steps.create_train_state(model, config, (28, 28, 1), rng))(
      jax.random.key(config.seed))
  return config, model, state, x


def _draws(model, params, x, rng):
  """(z, z_prior, D logits of each) as the encoder drew them (the same make_rng order)."""
  def run(m, x):
    z = m.encoder.code(x)
    prior = jax.random.normal(m.encoder.make_rng("sample"), z.shape)
    return z, prior, m.encoder.discriminator(z), m.encoder.discriminator(prior)
  return model.apply({"params": params}, x, rngs={"sample": rng}, method=run)


def _bce(p, target):  # torch's F.binary_cross_entropy, mean over the batch
  p = np.asarray(p, np.float64)
  return float(-(target * np.maximum(np.log(p), -100) +
                 (1 - target) * np.maximum(np.log(1 - p), -100)).mean())


def test_the_two_losses_are_pythaes():
  config, model, state, x = _setup()
  rng = jax.random.key(5)
  # jitted: eager, each operation compiles alone
  logits, terms, _ = jax.jit(lambda p, x: objectives.apply(model.apply, p, x, rng))(
      state.params, x)
  _, _, fake, real = jax.jit(lambda p, x: _draws(model, p, x, rng))(state.params, x)
  sig = lambda a: 1 / (1 + np.exp(-np.asarray(a, np.float64)))
  nll = jax.jit(metrics.bernoulli_nll)(logits, x)
  recon = np.asarray(nll, np.float64)
  autoencoder_loss = ALPHA * _bce(sig(fake), 1.0) + recon.mean()
  discriminator_loss = _bce(sig(real), 1.0) + _bce(sig(fake), 0.0)
  ours = jax.jit(lambda nll, adversarial: objectives.total(
      nll, {"adversarial": adversarial}, objectives.weights_of(config)).mean())(
          nll, terms["adversarial"])
  assert float(ours) == pytest.approx(autoencoder_loss, rel=1e-5)
  assert float(terms["discrimination"].mean()) == pytest.approx(discriminator_loss, rel=1e-5)


def test_one_step_updates_each_group_on_its_own_loss_with_its_own_adam():
  config, model, state, x = _setup()
  assert [g.name for g in state.groups] == ["discriminator"]
  assert set(state.opt_state.inner_states) == {"model", "discriminator"}
  rng = jax.random.key(9)
  # jitted: eager, each operation compiles alone
  new, out = jax.jit(steps.train_step, static_argnums=(3, 5))(
      state, x, x, "bernoulli", rng, objectives.weights_of(config))

  def losses(params):
    logits, terms, _ = objectives.apply(model.apply, params, x, rng)
    rec = metrics.bernoulli_nll(logits, x)
    return (rec + ALPHA * terms["adversarial"]).mean(), terms["discrimination"].mean()

  g_ae = jax.jit(jax.grad(lambda p: losses(p)[0]))(state.params)
  g_d = jax.jit(jax.grad(lambda p: losses(p)[1]))(state.params)
  assert float(out["loss"]) == pytest.approx(float(jax.jit(losses)(state.params)[0]), rel=1e-6)
  lr, eps = config.learning_rate, 1e-8
  adam_first = lambda g: -lr * g / (jnp.abs(g) + eps)  # Adam's first step
  # Each leaf's move and Adam's first step, jitted over the whole tree (eager, the
  # operations of each leaf's shape compile alone).
  moved = jax.jit(lambda a, b: jax.tree.map(jnp.subtract, a, b))(new.params, state.params)
  adam_ae, adam_d = jax.jit(lambda g: jax.tree.map(adam_first, g))((g_ae, g_d))
  disc = ("encoder", "discriminator")
  for path, moved_leaf in jax.tree_util.tree_leaves_with_path(moved):
    keys = tuple(k.key for k in path)
    step = _at(adam_d if keys[:2] == disc else adam_ae, keys)
    np.testing.assert_allclose(moved_leaf, step, rtol=1e-4, atol=1e-8, err_msg=str(keys))
  # The discriminator's loss moved only the discriminator, the autoencoder's the rest.
  assert np.abs(_at(g_ae, disc + ("logit", "kernel"))).max() > 0  # (its grad is dropped)


def _at(tree, keys):
  for k in keys:
    tree = tree[k]
  return tree


def test_val_loss_leaves_the_discriminators_term_out():
  config, model, state, x = _setup()
  mask = jnp.ones((6,))
  sums, _ = steps.eval_step(state, x, mask, 0, loss_kind="bernoulli", seed=0, loc=0.5,
                            scale=0.0, num_shown=2, weights=objectives.weights_of(config))
  assert float(sums["val_loss"]) == pytest.approx(
      float(sums["val_reconstruction"] + ALPHA * sums["val_adversarial"]), rel=1e-5)
  assert float(sums["val_discrimination"]) > 0


def test_configs_aae():
  config = config_file.get_config()
  config_lib.validate(config)
  assert dict(config.loss_weights) == {"adversarial": 0.5}
