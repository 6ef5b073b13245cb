"""The MLP-style models' Dense layers by initializer name (ae_jax/models/linear.py):
'torch' draws PyTorch's nn.Linear default, kernel and bias U(+-1/sqrt(fan_in)), each
layer with its own fan_in; every other name is the plain nn.Dense it always was."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.models import adversarial, dense, linear, vae


def _init(module, x):
  # jitted: eager, Flax compiles one executable per operation
  return jax.jit(module.init)(jax.random.key(0), x)["params"]


def test_a_wide_torch_layer_draws_kernel_and_bias_within_one_over_sqrt_fan_in():
  fan_in, features = 4096, 1024
  p = _init(linear.TorchDense(features), jnp.ones((1, fan_in)))
  kernel, bias = np.asarray(p["kernel"]), np.asarray(p["bias"])
  bound = 1 / math.sqrt(fan_in)
  assert kernel.shape == (fan_in, features) and bias.shape == (features,)
  # 4M uniform draws reach their bound; lecun_normal's would pass 2 sd = 2 * bound
  assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9999 * bound
  assert kernel.var() == pytest.approx(bound ** 2 / 3, rel=0.01)  # U(-b, b): b^2 / 3
  # the bias: not Flax's zeros, uniform on the same bound (1024 draws: max within 1%)
  assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.99 * bound
  assert bias.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
  assert np.count_nonzero(bias) == features


def test_each_torch_layer_takes_its_own_fan_in():
  """784 -> 1000 -> (20, 20): the hidden bias bound is 1/28, the heads' 1/sqrt(1000)."""
  p = _init(vae.VAEEncoder(hidden=(1000,), kernel_init="torch"), jnp.ones((2, 28, 28, 1)))
  for layer, fan_in in (("hidden0", 784), ("mean", 1000), ("logvar", 1000)):
    bound = 1 / math.sqrt(fan_in)
    kernel, bias = np.abs(p[layer]["kernel"]), np.abs(p[layer]["bias"])
    assert kernel.max() <= bound and kernel.max() > 0.999 * bound, layer
    assert bias.max() <= bound and np.count_nonzero(bias) == bias.size, layer
  assert np.abs(p["hidden0"]["bias"]).max() > 0.99 / 28  # 1000 draws on 1/28, not 1/sqrt(1000)


def test_a_torch_layer_computes_as_nn_dense_with_the_same_parameters():
  x = jax.random.normal(jax.random.key(3), (5, 7))
  layer = linear.TorchDense(4)
  p = _init(layer, x)
  got = jax.jit(layer.apply)({"params": p}, x)
  want = jax.jit(nn.Dense(4).apply)({"params": p}, x)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(got, x @ p["kernel"] + p["bias"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make,x", [
    (lambda init: dense.MLPEncoder(hidden=(16,), latent_dim=4, kernel_init=init),
     jnp.ones((2, 28, 28, 1))),
    (lambda init: dense.MLPDecoder(hidden=(16,), kernel_init=init), jnp.ones((2, 4))),
    (lambda init: dense.DenseDecoder(kernel_init=init), jnp.ones((2, 4))),
    (lambda init: vae.VAEEncoder(hidden=(16,), latent_dim=4, kernel_init=init),
     jnp.ones((2, 28, 28, 1))),
    (lambda init: adversarial.Discriminator((8,), init), jnp.ones((2, 4)))])
def test_torch_init_keeps_the_parameter_tree_and_the_default_keeps_zero_biases(make, x):
  default, torch = _init(make("lecun_normal"), x), _init(make("torch"), x)
  shapes = lambda p: jax.tree.map(jnp.shape, p)  # noqa: E731
  assert shapes(torch) == shapes(default)  # checkpoints and counts are unchanged
  for path, b in jax.tree_util.tree_leaves_with_path(default):
    if jax.tree_util.keystr(path).endswith("['bias']"):
      assert not np.any(b)  # Flax's zeros, as before
  biases = [b for path, b in jax.tree_util.tree_leaves_with_path(torch)
            if jax.tree_util.keystr(path).endswith("['bias']")]
  assert biases and all(np.all(np.asarray(b) != 0) for b in biases)
