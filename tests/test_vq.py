"""The vector quantizer (ae_jax/models/vq.py): nearest assignment, the straight-through
gradient, the loss terms, perplexity and usage, the EMA update and dead-code restarts,
each against numpy written out here; and the train step adding the module's deltas."""
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ae_jax.training import objectives, steps
from ae_jax.models import Autoencoder, ConvNetDecoder, registry, vq

K, D = 6, 3


def _encoder(**fields):
  return vq.VQEncoder(features=(4,), code_dim=D, codebook_size=K, **fields)


def _init(module, x):
  return jax.jit(module.init)({"params": jax.random.key(0)}, x)["params"]


def _apply(module, variables, *args, **kwargs):
  """module.apply(variables, *args, **kwargs) jitted whole (eager, each operation would
  compile alone)."""
  return jax.jit(functools.partial(module.apply, **kwargs))(variables, *args)


def _images(n=4, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n, 8, 8, 1))


def test_nearest_is_the_brute_force_argmin_and_ties_go_to_the_lower_index():
  rng = np.random.default_rng(0)
  z, codebook = rng.normal(size=(50, D)).astype(np.float32), rng.normal(size=(K, D)).astype(
      np.float32)
  brute = np.argmin(((z[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
  np.testing.assert_array_equal(vq.nearest(jnp.asarray(z), jnp.asarray(codebook)), brute)
  twice = np.concatenate([codebook[:2], codebook[:2]])  # rows 2, 3 repeat rows 0, 1
  np.testing.assert_array_equal(vq.nearest(jnp.asarray(codebook[:2]), jnp.asarray(twice)),
                                [0, 1])


def _literal_nearest(z, codebook):
  """The row-major argmin form `vq.nearest` replaced (the same distance expression)."""
  d = (jnp.sum(z**2, 1, keepdims=True) - 2 * z @ codebook.T + jnp.sum(codebook**2, 1)[None])
  return jnp.argmin(d, axis=1).astype(jnp.int32)


def test_nearest_gives_the_literal_argmins_indices_at_the_vq_vaes_size():
  """configs/vqvae.py's table (a batch's 128 x 7 x 7 vectors against 512 codes), compiled as
  the train step compiles it, with and without tied codebook rows: index for index."""
  z = jax.random.normal(jax.random.key(0), (6272, 16))
  codebook = jax.random.normal(jax.random.key(1), (512, 16))
  for book in (codebook, codebook.at[7].set(codebook[3]).at[300].set(codebook[3])):
    np.testing.assert_array_equal(jax.jit(vq.nearest)(z, book),
                                  jax.jit(_literal_nearest)(z, book))
  assert int(vq.nearest(jnp.full((2, 16), jnp.nan), codebook).max()) <= 511  # never past K


def test_straight_through_gives_e_exactly_and_passes_the_gradient_to_z_e_only():
  rng = np.random.default_rng(1)
  z_e, e, w = (jnp.asarray(rng.normal(size=(5, D)), jnp.float32) for _ in range(3))
  np.testing.assert_array_equal(vq.straight_through(z_e, e), e)  # bit for bit
  g_z, g_e = jax.grad(lambda a, b: jnp.sum(vq.straight_through(a, b) * w), (0, 1))(z_e, e)
  np.testing.assert_array_equal(g_z, w)
  np.testing.assert_array_equal(g_e, np.zeros_like(e))


def test_the_code_is_codebook_rows_and_indices_name_them():
  module, x = _encoder(), _images()
  params = _init(module, x)
  z_q = _apply(module, {"params": params}, x)
  idx = _apply(module, {"params": params}, x, method="indices")
  codebook = _apply(module, {"params": params}, method="get_codebook")
  assert z_q.shape == (4, 4, 4, D) and idx.shape == (4, 4, 4) and idx.dtype == jnp.int32
  np.testing.assert_array_equal(z_q, np.asarray(codebook)[np.asarray(idx)])
  assert vq.is_vq_encoder(vq.VQEncoder) and not vq.is_vq_encoder(ConvNetDecoder)


def test_loss_terms_and_metrics_per_image():
  module, x = _encoder(codebook_update="loss"), _images()
  params = _init(module, x)
  z_e = _apply(module, {"params": params}, x, method=lambda m, x: m.analysis(x))
  _, reported = _apply(module, {"params": params}, x, mutable=["losses", "metrics"])
  idx = np.asarray(vq.nearest(z_e.reshape(-1, D), params["codebook"]))
  e = np.asarray(params["codebook"])[idx].reshape(z_e.shape)
  sq = ((np.asarray(z_e) - e) ** 2).reshape(4, -1).mean(1)
  np.testing.assert_allclose(reported["losses"]["commitment"][0], sq, rtol=1e-6)
  np.testing.assert_allclose(reported["losses"]["codebook"][0], sq, rtol=1e-6)
  counts = np.bincount(idx, minlength=K)
  p = counts[counts > 0] / counts.sum()
  np.testing.assert_allclose(reported["metrics"]["perplexity"][0],
                             np.full(4, np.exp(-(p * np.log(p)).sum())), rtol=1e-6)
  np.testing.assert_allclose(reported["metrics"]["usage"][0], np.full(4, (counts > 0).mean()))
  # The 'ema' codebook reports no codebook term.
  _, reported = _apply(_encoder(), {"params": _init(_encoder(), x)}, x, mutable=["losses"])
  assert set(reported["losses"]) == {"commitment"}


def test_perplexity_is_k_for_uniform_use_and_1_for_one_code():
  assert float(vq.perplexity(jnp.full((8,), 5.0))) == pytest.approx(8.0)
  assert float(vq.perplexity(jnp.array([0.0, 7.0, 0.0]))) == pytest.approx(1.0)


def _gradients(update):
  """Gradients of a whole autoencoder's objective with respect to the encoder's params."""
  model = Autoencoder(encoder=_encoder(codebook_update=update),
                      decoder=ConvNetDecoder(features=(4,), image_shape=(8, 8, 1)))
  x = _images()
  params = _init(model, x)

  def loss(p):
    logits, terms, _ = objectives.apply(model.apply, p, x, jax.random.key(1))
    return objectives.total(jnp.mean((logits - x) ** 2, axis=(1, 2, 3)), terms,
                            (("commitment", 0.25),)).mean()
  return jax.jit(jax.grad(loss))(params)["encoder"]


def test_gradients_reach_the_encoder_and_the_codebook_only_by_the_loss_in_loss_mode():
  ema, by_loss = _gradients("ema"), _gradients("loss")
  for g in (ema, by_loss):
    assert float(jnp.abs(g["analysis"]["conv0"]["kernel"]).max()) > 0  # straight through
  assert float(jnp.abs(by_loss["codebook"]).max()) > 0
  # EMA: nothing the optimizer would move but the encoder (Adam's update of 0 is 0).
  for name in ("codebook", "ema_cluster_size", "ema_embed_sum", "steps_unused"):
    np.testing.assert_array_equal(ema[name], np.zeros_like(ema[name]))


def _deltas(module, params, x, key=2):
  _, out = _apply(module, {"params": params}, x, rngs={"sample": jax.random.key(key)},
                  mutable=[objectives.DELTAS])
  return out[objectives.DELTAS]


def test_ema_update_is_sonnets_with_laplace_smoothing():
  module, x = _encoder(ema_decay=0.9, dead_code_after=0), _images()
  params = _init(module, x)
  params = {**params, "ema_cluster_size": jnp.arange(1.0, K + 1)}
  z = np.asarray(_apply(module, {"params": params}, x, method=lambda m, x: m.analysis(x))
                 ).reshape(-1, D)
  deltas = _deltas(module, params, x)
  new = {k: np.asarray(params[k]) + np.asarray(v) for k, v in deltas.items()}
  idx = np.argmin(((z[:, None] - np.asarray(params["codebook"])[None]) ** 2).sum(-1), 1)
  onehot = np.eye(K)[idx]
  n_k = 0.9 * np.arange(1.0, K + 1) + 0.1 * onehot.sum(0)
  m_k = 0.9 * np.asarray(params["ema_embed_sum"]) + 0.1 * onehot.T @ z
  smoothed = (n_k + 1e-5) / (n_k.sum() + K * 1e-5) * n_k.sum()
  np.testing.assert_allclose(new["ema_cluster_size"], n_k, rtol=1e-6)
  np.testing.assert_allclose(new["ema_embed_sum"], m_k, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new["codebook"], m_k / smoothed[:, None], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(new["steps_unused"], np.where(onehot.sum(0) > 0, 0, 1))
  # Evaluation (no mutable deltas) and init change nothing.
  reported = _apply(module, {"params": params}, x, mutable=list(objectives.REPORTS))[1]
  assert objectives.DELTAS not in reported


@pytest.mark.parametrize("update", vq.UPDATES)
def test_a_code_unused_for_dead_code_after_steps_restarts_at_a_batch_output(update):
  module, x = _encoder(codebook_update=update, dead_code_after=3), _images()
  params = _init(module, x)
  z = np.asarray(_apply(module, {"params": params}, x, method=lambda m, x: m.analysis(x))
                 ).reshape(-1, D)
  used = np.unique(np.asarray(_apply(module, {"params": params}, x, method="indices")))
  unused = [k for k in range(K) if k not in used]
  assert unused, "the test needs a code the batch does not use"
  before = np.zeros(K, np.float32)
  before[unused[0]] = 2.0  # its third step unused: dead now
  if len(unused) > 1:
    before[unused[1]] = 1.0  # its second: not yet
  params = {**params, "steps_unused": jnp.asarray(before)}
  deltas = _deltas(module, params, x)
  new = {k: np.asarray(params[k]) + np.asarray(v) for k, v in deltas.items()}
  dead = unused[0]
  assert any(np.allclose(new["codebook"][dead], row, atol=1e-6) for row in z)
  assert new["steps_unused"][dead] == 0
  if len(unused) > 1:  # not yet dead: counted, and (loss mode) left where it was
    assert new["steps_unused"][unused[1]] == 2
    if update == "loss":
      np.testing.assert_array_equal(new["codebook"][unused[1]], params["codebook"][unused[1]])
  np.testing.assert_array_equal(new["steps_unused"][used], 0)
  if update == "ema":
    assert new["ema_cluster_size"][dead] == pytest.approx(1.0)
    np.testing.assert_allclose(new["ema_embed_sum"][dead], new["codebook"][dead], rtol=1e-4)
  # The restart point is drawn from the step's key: the same key, the same point.
  again = _deltas(module, params, x)
  np.testing.assert_array_equal(again["codebook"], deltas["codebook"])


def test_the_train_step_adds_the_deltas_after_adam():
  model = Autoencoder(encoder=_encoder(dead_code_after=0),
                      decoder=ConvNetDecoder(features=(4,), image_shape=(8, 8, 1)))
  x = _images()
  params = _init(model, x)
  state = steps.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-3))
  rng = jax.random.key(5)
  new, out = jax.jit(steps.train_step, static_argnums=(3, 5))(state, x, x, "bce", rng,
                                                             (("commitment", 0.25),))
  deltas = jax.jit(lambda p, x: objectives.apply_for_training(model.apply, p, x, rng))(
      params, x)[3]["encoder"]
  for name in ("codebook", "ema_cluster_size", "ema_embed_sum", "steps_unused"):
    np.testing.assert_allclose(new.params["encoder"][name],  # to float rounding
                               params["encoder"][name] + deltas[name], rtol=1e-6, atol=1e-7)
  assert not np.array_equal(new.params["encoder"]["codebook"], params["encoder"]["codebook"])
  assert {"commitment", "perplexity", "usage", "reconstruction", "loss"} <= set(out)


@pytest.mark.parametrize("field, value, says", [
    ("codebook_size", 1, "an integer >= 2"),
    ("codebook_size", 0, "a positive integer"),
    ("code_dim", 0, "a positive integer"),
    ("codebook_update", "kmeans", "one of ('loss', 'ema')"),
    ("ema_decay", 1.0, "a number in [0, 1)"),
    ("dead_code_after", -1, "an integer >= 0"),
])
def test_bad_fields_are_one_line_naming_the_field(field, value, says):
  from ae_jax.core.errors import UserError  # pylint: disable=import-outside-toplevel
  spec = {"name": "vq", field: value}
  with pytest.raises(UserError, match=re.escape(f"encoder.{field}=") + ".*" + re.escape(says)):
    registry.build(spec, "encoder", (28, 28, 1))
