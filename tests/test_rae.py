"""The RAE (Ghosh et al. 2020; ae_jax/models/rae.py, configs/rae.py) against pythae 0.1.2's
`RAE_L2`: the code's L2 term, the decoder's weight decay (torch Adam's `weight_decay`), and
the ex-post Gaussian mixture that `python -m ae_jax.sample` draws from."""
import jax
import numpy as np
import pytest

from ae_jax import models
from ae_jax.core import metrics
from ae_jax.evaluation import density
from ae_jax.training import config_lib, objectives, steps
from configs import rae as config_file


def _model():
  config = config_file.get_config()
  config.encoder.net.hidden, config.encoder.net.latent_dim = (8,), 3
  config.decoder.hidden = (8,)
  return config, models.from_config(config, (28, 28, 1))


def test_the_objective_is_pythaes_sse_plus_embedding_weight_times_half_the_code_norm():
  config, model = _model()
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  params = model.init(models.shape_rngs(), x)["params"]
  logits, terms, _ = objectives.apply(model.apply, params, x, jax.random.key(1))
  z = np.asarray(model.apply({"params": params}, x, method="encode"), np.float64)
  recon = np.asarray(jax.nn.sigmoid(logits), np.float64).reshape(4, -1)
  sse = ((recon - np.asarray(x).reshape(4, -1)) ** 2).sum(-1)  # F.mse_loss(...).sum(-1)
  embedding_loss = 0.5 * np.linalg.norm(z, axis=-1) ** 2
  np.testing.assert_allclose(terms["code_l2"], embedding_loss, rtol=1e-5)
  rec = metrics.reconstruction_loss("sse", logits, x)
  np.testing.assert_allclose(rec, sse, rtol=1e-5)
  loss = objectives.total(rec, terms, objectives.weights_of(config)).mean()
  assert float(loss) == pytest.approx((sse + 1e-4 * embedding_loss).mean(), rel=1e-5)


def test_weight_decay_on_the_decoder_is_torch_adams():
  config, model = _model()
  config.weight_decay.decoder = 0.5  # large, to be seen
  tx = steps.optimizer(config)
  params = model.init(models.shape_rngs(), np.zeros((1, 28, 28, 1), np.float32))["params"]
  grads = jax.tree.map(lambda p: 0.01 * np.ones_like(p), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  lr, eps = config.learning_rate, 1e-8
  for half, wd in (("encoder", 0.0), ("decoder", 0.5)):
    for g, p, u in zip(*(jax.tree.leaves(t[half]) for t in (grads, params, updates))):
      g = np.asarray(g, np.float64) + wd * np.asarray(p, np.float64)  # torch: grad += wd * p
      want = -lr * g / (np.abs(g) + eps)  # Adam's first step: m^ = g, v^ = g^2
      np.testing.assert_allclose(u, want, rtol=1e-4, atol=1e-9)


def test_grad_clip_norm_clips_the_global_norm_before_adam():
  """config.grad_clip_norm (CompressAI's example trainer clips at 1.0): a gradient above the
  norm is scaled down to it before Adam sees it (Adam's first step alone would not show
  it: the second does)."""
  config, model = _model()
  config.weight_decay = {}  # the RAE's decoder decay aside: the clip alone
  params = model.init(models.shape_rngs(), np.zeros((1, 28, 28, 1), np.float32))["params"]
  big = jax.tree.map(lambda p: 10.0 * np.ones_like(p), params)
  small = jax.tree.map(lambda p: 0.001 * np.ones_like(p), params)
  n = sum(np.size(p) for p in jax.tree.leaves(params))
  assert 0.001 * np.sqrt(n) < 0.5  # the second gradient is below the norm: not clipped
  lr, b1, b2, eps = config.learning_rate, 0.9, 0.999, 1e-8

  def second_update(clip):
    config.grad_clip_norm = clip
    tx = steps.optimizer(config)
    state = tx.init(params)
    _, state = tx.update(big, state, params)
    return jax.tree.leaves(tx.update(small, state, params)[0])[0].ravel()[0]

  def adam_by_hand(g1):
    m = b1 * (1 - b1) * g1 + (1 - b1) * 0.001
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * 0.001**2
    return -lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)

  clipped = 10.0 * min(1.0, 0.5 / (10.0 * np.sqrt(n)))  # each entry of the clipped gradient
  assert second_update(0.5) == pytest.approx(adam_by_hand(clipped), rel=1e-4)
  assert second_update(None) == pytest.approx(adam_by_hand(10.0), rel=1e-4)
  assert abs(second_update(0.5) - second_update(None)) > 1e-4


def test_the_ex_post_mixture_recovers_the_components_of_its_codes():
  rng = np.random.default_rng(0)
  means = np.array([[-4.0, 0.0], [4.0, 1.0], [0.0, 6.0]])
  codes = np.concatenate([rng.normal(m, [0.5, 1.0], (400, 2)) for m in means])
  gmm = density.fit_gmm(codes, components=3)
  order = np.argsort(gmm["means"][:, 0])
  np.testing.assert_allclose(gmm["means"][order], means[[0, 2, 1]], atol=0.15)
  np.testing.assert_allclose(gmm["weights"], [1 / 3] * 3, atol=0.02)
  for cov in gmm["covariances"]:
    np.testing.assert_allclose(np.diag(cov), [0.25, 1.0], rtol=0.25)
  draws = density.sample_gmm(gmm, 3000, seed=1)
  assert draws.shape == (3000, 2) and draws.dtype == np.float32
  np.testing.assert_allclose(draws.mean(0), codes.mean(0), atol=0.2)
  # EM's log-likelihood: the mixture's, which a single Gaussian's cannot beat
  single = density.fit_gmm(codes, components=1)
  assert gmm["log_likelihood"] > single["log_likelihood"] + 0.5


def test_the_mixture_is_stored_beside_the_run_and_refitted_for_another_checkpoint(tmp_path):
  codes = np.random.default_rng(0).normal(size=(200, 3))
  calls = []

  def codes_fn():
    calls.append(1)
    return codes
  run = {"step": 6, "checkpoint_id": 123}
  a = density.load_or_fit(str(tmp_path), run, codes_fn, components=2)
  b = density.load_or_fit(str(tmp_path), run, codes_fn, components=2)
  assert len(calls) == 1 and (tmp_path / density.FILE).exists()
  np.testing.assert_array_equal(a["means"], b["means"])
  density.load_or_fit(str(tmp_path), {**run, "step": 7}, codes_fn, components=2)
  assert len(calls) == 2


def test_configs_rae():
  config = config_file.get_config()
  config_lib.validate(config)
  assert config.loss == "sse" and config.loss_weights.code_l2 == 1e-4
  assert dict(config.weight_decay) == {"decoder": 1e-7}


def test_adam_eps_is_the_configs_and_the_codecs_put_compressais_on_their_loss_scale():
  """config.adam_eps reaches Adam (its first step is g / (|g| + eps) times the learning
  rate), and the codecs' configs set it and the clip to CompressAI's 1e-8 and 1.0 over
  lambda 255^2, the factor their loss is CompressAI's over (each at its own lambda)."""
  from configs import codec_conv, hyperprior, hyperprior_photo  # pylint: disable=import-outside-toplevel
  config, model = _model()
  config.weight_decay = {}
  params = model.init(models.shape_rngs(), np.zeros((1, 28, 28, 1), np.float32))["params"]
  tiny = jax.tree.map(lambda p: np.full_like(p, 1e-9), params)
  for eps in (1e-8, 1e-12):
    config.adam_eps = eps
    tx = steps.optimizer(config)
    first = jax.tree.leaves(tx.update(tiny, tx.init(params), params)[0])[0].ravel()[0]
    assert first == pytest.approx(-config.learning_rate * 1e-9 / (1e-9 + eps), rel=1e-3)
  for module, lmbda in ((hyperprior, "0.4"), (codec_conv, "0.025"), (hyperprior_photo, "0.1")):
    c = module.get_config(lmbda)
    scale = float(lmbda) * 255.0**2
    assert c.adam_eps == pytest.approx(1e-8 / scale) and c.grad_clip_norm == pytest.approx(
        1.0 / scale)
