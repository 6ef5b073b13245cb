"""GDN / IGDN (ae_jax/models/gdn.py) against a float64 numpy reference, values and
gradients, and the convolutional transforms built from them (ae_jax/models/gdn_transforms.py):
their shapes for any image size, and their parameter counts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.models import gdn, registry
from ae_jax.models.gdn_transforms import GDNAnalysis, GDNSynthesis, pad_to_multiple


def _reference(x, beta, gamma, inverse):
  """GDN in float64: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (IGDN multiplies)."""
  norm = beta + np.einsum("...j,ij->...i", x**2, gamma)
  return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


def _reference_grads(x, beta, gamma, w, inverse):
  """d/dx, d/dbeta, d/dgamma of sum(w * GDN(x)), derived by hand (float64)."""
  norm = beta + np.einsum("...j,ij->...i", x**2, gamma)
  e = 0.5 if inverse else -0.5
  # y_i = x_i n_i^e: dy_i/dn_i = e x_i n_i^(e-1); dn_i/dx_k = 2 gamma_ik x_k
  g_n = w * e * x * norm ** (e - 1)  # dL/dn_i
  g_x = w * norm**e + 2 * x * np.einsum("...i,ik->...k", g_n, gamma)
  g_beta = g_n.reshape(-1, x.shape[-1]).sum(0)
  c = x.shape[-1]
  g_gamma = g_n.reshape(-1, c).T @ (x**2).reshape(-1, c)
  return g_x, g_beta, g_gamma


def _params(c, seed):
  rng = np.random.default_rng(seed)
  beta = rng.uniform(0.5, 2.0, c)
  gamma = rng.uniform(0.0, 0.3, (c, c))
  return beta, gamma


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_the_formula_values_and_gradients(inverse):
  c = 5
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 4, c))
  w = rng.normal(size=x.shape)
  beta, gamma = _params(c, 2)
  layer = gdn.GDN(inverse=inverse)
  params = {"beta": gdn.nonnegative_init(jnp.asarray(beta, jnp.float32)),
            "gamma": gdn.nonnegative_init(jnp.asarray(gamma, jnp.float32))}
  # the parameterization gives the values back (to float32)
  np.testing.assert_allclose(gdn.nonnegative(params["beta"], 1e-6), beta, rtol=1e-6)
  np.testing.assert_allclose(gdn.nonnegative(params["gamma"]), gamma, rtol=1e-5, atol=1e-7)

  def loss(p, x):
    return jnp.sum(jnp.asarray(w, jnp.float32) * layer.apply({"params": p}, x))

  xj = jnp.asarray(x, jnp.float32)
  # jitted: eager, each operation compiles alone
  np.testing.assert_allclose(jax.jit(layer.apply)({"params": params}, xj),
                             _reference(x, beta, gamma, inverse), rtol=2e-5, atol=1e-6)
  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xj)
  ref_x, ref_beta, ref_gamma = _reference_grads(x, beta, gamma, w, inverse)
  np.testing.assert_allclose(g_x, ref_x, rtol=1e-4, atol=1e-5)
  # through the parameterization: value = p^2 - pedestal, d value / d p = 2 p
  np.testing.assert_allclose(g_params["beta"], ref_beta * 2 * np.asarray(params["beta"]),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(g_params["gamma"], ref_gamma * 2 * np.asarray(params["gamma"]),
                             rtol=1e-4, atol=1e-5)


def test_gdn_initialises_to_beta_one_and_gamma_a_tenth_of_the_identity():
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
  params = jax.jit(gdn.GDN().init)(jax.random.key(1), x)["params"]
  np.testing.assert_allclose(gdn.nonnegative(params["beta"], 1e-6), np.ones(4), rtol=1e-6)
  np.testing.assert_allclose(gdn.nonnegative(params["gamma"]), 0.1 * np.eye(4), atol=1e-7)
  y = jax.jit(gdn.GDN().apply)({"params": params}, x)
  np.testing.assert_allclose(y, _reference(np.asarray(x, np.float64), np.ones(4),
                                           0.1 * np.eye(4), False), rtol=1e-5)


def test_the_bound_keeps_beta_positive_and_lets_a_raising_gradient_through():
  p = jnp.asarray([-1.0, 0.0, 1e-9])  # all below the bound sqrt(1e-6 + pedestal)
  values = gdn.nonnegative(p, 1e-6)
  np.testing.assert_allclose(values, 1e-6, rtol=1e-6)
  # a loss that wants beta larger still moves p (upwards); one that wants it smaller not
  up = jax.grad(lambda p: -jnp.sum(gdn.nonnegative(p, 1e-6)))(p)
  down = jax.grad(lambda p: jnp.sum(gdn.nonnegative(p, 1e-6)))(p)
  assert (np.asarray(up) < 0).all() and (np.asarray(down) == 0).all()


@pytest.mark.parametrize("size", [(28, 28), (37, 50), (8, 8), (1, 3)])
def test_the_transforms_take_any_size_and_give_it_back(size):
  h, w = size
  enc = GDNAnalysis(features=8, latent_channels=6, levels=3)
  x = jax.random.uniform(jax.random.key(0), (2, h, w, 1))
  ev = jax.jit(enc.init)(jax.random.key(1), x)
  y = jax.jit(enc.apply)(ev, x)
  assert y.shape == (2, -(-h // 8), -(-w // 8), 6)
  dec = GDNSynthesis(features=8, levels=3, image_shape=(h, w, 1))
  dv = jax.jit(dec.init)(jax.random.key(2), y)
  assert jax.jit(dec.apply)(dv, y).shape == (2, h, w, 1)


def test_padding_replicates_the_border():
  x = jnp.arange(6.0).reshape(1, 2, 3, 1)
  p = pad_to_multiple(x, 4)
  assert p.shape == (1, 4, 4, 1)
  np.testing.assert_array_equal(p[0, :, :, 0], [[0, 1, 2, 2], [3, 4, 5, 5], [3, 4, 5, 5],
                                                [3, 4, 5, 5]])
  assert pad_to_multiple(x, 1).shape == x.shape


def test_parameter_counts():
  """N=64, M=96, 3 levels (the calibration's design): conv 5x5 weights and biases, GDNs'
  beta (N) and gamma (N x N)."""
  rec = {"encoder": {"name": "gdn", "features": 64, "latent_channels": 96, "levels": 3},
         "decoder": {"name": "gdn", "features": 64, "levels": 3}}
  model, code = registry.checked_autoencoder(rec, (28, 28, 1))
  assert code == (4, 4, 96)
  params = jax.eval_shape(lambda x: model.init(registry.shape_rngs(), x),
                          jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.float32))["params"]
  count = lambda t: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(t))
  gdn_params = 64 + 64 * 64
  assert count(params["encoder"]) == (25 * 1 * 64 + 64) + (25 * 64 * 64 + 64) \
      + (25 * 64 * 96 + 96) + 2 * gdn_params
  assert count(params["decoder"]) == (25 * 96 * 64 + 64) + (25 * 64 * 64 + 64) \
      + (25 * 64 * 1 + 1) + 2 * gdn_params


def _strided_forms():
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  from ae_jax.models import layers  # pylint: disable=import-outside-toplevel
  up = lambda c, k: (layers.SubpixelConvTranspose(c, k),
                     nn.ConvTranspose(c, (k, k), strides=(2, 2), padding="SAME"))
  down = lambda c, k: (layers.SpaceToDepthConv(c, k),
                       nn.Conv(c, (k, k), strides=(2, 2), padding="SAME"))
  # (forms, kernel, (batch, h, w, in, out)); inputs below the form's minimum size are one
  # matmul (layers._dense: the 2x2, 1x1, 1x3, 4x4, 2x2, 1x1 rows, even and odd kernels),
  # or lax's own form where that matrix would be large (the last of each)
  return ([(up, 5, (2, 4, 5, 3, 2)), (up, 5, (1, 7, 7, 8, 4)), (up, 3, (2, 4, 6, 2, 3)),
           (up, 4, (1, 3, 5, 2, 2)), (up, 5, (2, 2, 2, 4, 3)), (up, 5, (2, 1, 1, 4, 3)),
           (up, 4, (2, 1, 3, 3, 2)), (up, 3, (2, 2, 2, 3, 2)), (up, 5, (1, 3, 5, 128, 128))]
          + [(down, 5, (2, 8, 8, 3, 2)), (down, 5, (1, 7, 9, 4, 3)), (down, 3, (2, 6, 5, 2, 3)),
             (down, 4, (1, 5, 6, 2, 2)), (down, 5, (2, 4, 4, 3, 2)), (down, 5, (2, 2, 2, 3, 2)),
             (down, 5, (2, 1, 1, 3, 2)), (down, 4, (2, 3, 5, 2, 3)), (down, 3, (2, 5, 3, 2, 2)),
             (down, 5, (1, 7, 8, 256, 128))])


@pytest.mark.parametrize("forms,kernel,shape", _strided_forms())
def test_strided_layers_are_the_plain_flax_layers_values_and_gradients(forms, kernel, shape):
  """The synthesis' stride-2 transposed conv computed per output parity
  (SubpixelConvTranspose) and the analysis' stride-2 conv as a conv of the space-to-depth
  input (SpaceToDepthConv): the same parameters (names, shapes, initial values) as
  nn.ConvTranspose / nn.Conv (strides 2, 'SAME'), the same outputs and gradients
  (parameters and input) to float rounding."""
  b, h, w, cin, cout = shape
  x = jax.random.normal(jax.random.key(0), (b, h, w, cin))
  fast, plain = forms(cout, kernel)

  @jax.jit  # one program for both sides (eagerly, each operation would compile alone)
  def both(x):
    inits = fast.init(jax.random.key(1), x), plain.init(jax.random.key(1), x)
    v = jax.tree.map(lambda t: t + 0.1 * jax.random.normal(jax.random.key(2), t.shape),
                     inits[0])
    y = fast.apply(v, x), plain.apply(v, x)
    r = jax.random.normal(jax.random.key(3), y[0].shape)
    grads = [jax.grad(lambda v, x, m=m: (m.apply(v, x) * r).sum(), argnums=(0, 1))(v, x)
             for m in (fast, plain)]
    return inits, y, grads

  inits, (y, y_plain), grads = both(x)
  jax.tree.map(np.testing.assert_array_equal, *inits)
  assert y.shape == y_plain.shape
  np.testing.assert_allclose(y, y_plain, atol=1e-5, rtol=1e-5)
  jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, atol=1e-4, rtol=1e-5), *grads)


def test_torch_init_draws_every_conv_as_pytorchs_conv_layers():
  """kernel_init 'torch' (CompressAI's layers are PyTorch's Conv2d / ConvTranspose2d):
  kernel and bias both U(+-1/sqrt(fan_in)), where a transposed conv's fan_in counts its
  *output* channels (torch reads it off weight dim 1); in g_a, g_s, h_a and h_s. The
  default stays Flax's (a zero bias)."""
  import configs.hyperprior  # pylint: disable=import-outside-toplevel
  config = configs.hyperprior.get_config()
  for group in (config.encoder, config.encoder.analysis, config.decoder):
    group.kernel_init = "torch"
  model, _ = registry.checked_autoencoder(config, (28, 28, 1))
  params = jax.jit(model.init)(registry.shape_rngs(), jnp.zeros((1, 28, 28, 1)))["params"]
  layers = {jax.tree_util.keystr(path[:-1]): node for path, node in
            jax.tree_util.tree_flatten_with_path(params)[0] if path[-1].key == "kernel"}
  transposed = ("deconv",)
  assert len(layers) == 3 + 3 + 3 + 3  # g_a, g_s, h_a (3x3 + 2 strided), h_s (2 + 3x3)
  for name, kernel in layers.items():
    k, _, cin, cout = kernel.shape
    fan_in = k * k * (cout if any(t in name for t in transposed) else cin)
    bound = 1 / np.sqrt(fan_in)
    node = params
    for key in name.strip("[]'").split("']['"):
      node = node[key]
    for values in (np.asarray(kernel), np.asarray(node["bias"])):
      assert np.abs(values).max() <= bound and np.any(values), name
      assert values.size < 16 or np.abs(values).max() > 0.5 * bound, name
    assert np.asarray(kernel).std() == pytest.approx(bound / np.sqrt(3), rel=0.1), name
  flax_init = jax.jit(GDNAnalysis(features=4, latent_channels=6, levels=2).init)(
      jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
  assert not np.any(flax_init["conv0"]["bias"])
