"""Losses and metrics against values computed by hand."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.core import metrics


def test_bce_from_logits_matches_hand_computation():
  logits = jnp.array([[0.0, 2.0], [-1.0, 3.0]]).reshape(2, 1, 2, 1)
  target = jnp.array([[1.0, 0.0], [0.25, 1.0]]).reshape(2, 1, 2, 1)
  sig = lambda v: 1 / (1 + math.exp(-v))
  bce = lambda p, t: -(t * math.log(p) + (1 - t) * math.log(1 - p))
  expected = [(bce(sig(0.0), 1.0) + bce(sig(2.0), 0.0)) / 2,
              (bce(sig(-1.0), 0.25) + bce(sig(3.0), 1.0)) / 2]
  np.testing.assert_allclose(metrics.bce_from_logits(logits, target), expected, rtol=1e-6)


def test_bce_is_stable_for_large_logits():
  logits = jnp.array([[100.0, -100.0]]).reshape(1, 2)
  target = jnp.array([[1.0, 0.0]])
  value = metrics.bce_from_logits(logits, target)
  assert np.isfinite(value).all() and float(value[0]) < 1e-6


def test_mse_psnr_by_hand():
  a = jnp.zeros((2, 2, 2, 1))
  b = a.at[0].set(0.5).at[1, 0, 0, 0].set(1.0)
  np.testing.assert_allclose(metrics.mse(a, b), [0.25, 0.25])
  np.testing.assert_allclose(metrics.psnr(a, b), [10 * math.log10(4)] * 2, rtol=1e-6)


def test_reconstruction_loss_kinds():
  logits = jnp.array([[0.3, -0.7]])
  target = jnp.array([[0.2, 0.9]])
  p = 1 / (1 + np.exp(-np.array([0.3, -0.7])))
  np.testing.assert_allclose(metrics.reconstruction_loss("mse", logits, target),
                             [np.mean((p - [0.2, 0.9]) ** 2)], rtol=1e-6)
  np.testing.assert_allclose(metrics.reconstruction_loss("bce", logits, target),
                             metrics.bce_from_logits(logits, target))
  with pytest.raises(ValueError, match="unknown loss"):
    metrics.reconstruction_loss("hinge", logits, target)


def test_bce_softplus_form_equals_optax():
  import jax
  import optax
  logits = 30 * jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
  target = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  # jitted: eager, each operation compiles alone
  expected = jax.jit(lambda z, t: optax.sigmoid_binary_cross_entropy(z, t).reshape(4, -1).mean(1))(
      logits, target)
  np.testing.assert_allclose(jax.jit(metrics.bce_from_logits)(logits, target), expected,
                             rtol=1e-5)


def test_log1p_unit_equals_log1p_on_its_domain():
  # `_log1p_unit` stands for jnp.log1p on [0, 1] (the loss only calls it on exp(-|z|)).
  x = np.concatenate([[0.0, 1e-30, 1e-8, 1.0], np.linspace(0, 1, 100_001),
                      np.geomspace(1e-12, 1, 1001)])
  got = np.asarray(metrics._log1p_unit(jnp.asarray(x, jnp.float32)), np.float64)
  want = np.log1p(x.astype(np.float32).astype(np.float64))
  assert got[0] == 0.0
  np.testing.assert_allclose(got, want, rtol=2.6e-7, atol=0)  # jnp.log1p: 2.1e-7


def test_bce_gradient_equals_autodiff_of_the_softplus_form():
  # The custom VJP (sigmoid from the forward's exp) against JAX's own derivative of the
  # plain formula, for logits from tiny to saturated, and for the target as well.
  import jax
  logits = 12 * jax.random.normal(jax.random.key(0), (3, 28, 28, 1))
  logits = logits.at[0, 0, :4, 0].set(jnp.array([0.0, -0.0, 80.0, -80.0]))
  target = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
  plain = lambda z, t: (jax.nn.softplus(z) - z * t).reshape(3, -1).mean(1)
  weights = jnp.array([1.0, -2.0, 0.5])
  for argnum in (0, 1):  # jitted: eager, each operation compiles alone
    got = jax.jit(jax.grad(lambda z, t: weights @ metrics.bce_from_logits(z, t), argnum))(
        logits, target)
    want = jax.jit(jax.grad(lambda z, t: weights @ plain(z, t), argnum))(logits, target)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(jax.jit(metrics.bce_from_logits)(logits, target),
                             plain(logits, target), rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 28, 28, 1), (2, 32, 20, 3), (11, 11, 1)])
def test_ssim_equals_dm_pix_with_its_own_blur(shape):
  # ae_jax writes dm-pix's Gaussian blur as band-matrix products; a wrong band (offset,
  # width, sigma, normalisation) or swapped axes changes these values by far more than 1e-5.
  import dm_pix  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  a = rng.random(shape, np.float32)
  b = np.clip(a + 0.2 * rng.standard_normal(shape).astype(np.float32), 0, 1)
  # jitted: eager, each operation compiles alone
  np.testing.assert_allclose(jax.jit(metrics.ssim)(a, b),
                             jax.jit(lambda a, b: dm_pix.ssim(a, b, max_val=1.0))(a, b),
                             atol=1e-5)
