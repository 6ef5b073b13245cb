"""Module shapes, the lecture's parameter counts, and the fast pool/upsample forms."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax import models


def n_params(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("kind,count,code", [("dense", 101_200, (64,)), ("conv", 4_385, (4, 4, 8))])
def test_shapes_and_parameter_counts(kind, count, code):
  ae = models.make_autoencoder(kind)
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  variables = ae.init(jax.random.key(1), x)
  assert n_params(variables) == count
  assert set(variables["params"]) == {"encoder", "decoder"}
  z = ae.apply(variables, x, method="encode")
  assert z.shape == (3, *code) == (3, *models.code_shape(ae.encoder, (28, 28, 1)))
  restored = ae.apply(variables, z, method="decode")
  assert restored.shape == (3, 28, 28, 1)
  assert float(restored.min()) >= 0.0 and float(restored.max()) <= 1.0
  # The halves work apart: encoder and decoder applied with their own subtrees.
  enc, dec = models.make_encoder(kind), models.make_decoder(kind)
  z2 = enc.apply({"params": variables["params"]["encoder"]}, x)
  np.testing.assert_allclose(z2, z, rtol=1e-6)
  logits = dec.apply({"params": variables["params"]["decoder"]}, z2)
  np.testing.assert_allclose(jax.nn.sigmoid(logits), restored, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ae.apply(variables, x, method="reconstruct"), restored, atol=1e-6)


def test_dense_latent_dim_and_layer_names():
  ae = models.make_autoencoder("dense", latent_dim=8)
  variables = ae.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
  assert variables["params"]["encoder"]["latent_vector"]["kernel"].shape == (784, 8)
  assert variables["params"]["decoder"]["output"]["kernel"].shape == (8, 784)


def test_conv_encoder_rejects_other_image_shapes():
  with pytest.raises(ValueError, match="28x28x1"):
    models.ConvEncoder().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


@pytest.mark.parametrize("hw", [28, 14, 7])
def test_max_pool_matches_flax_values_and_gradients(hw):
  x = jax.random.normal(jax.random.key(hw), (2, hw, hw, 3))
  ref = lambda v: nn.max_pool(v, (2, 2), (2, 2), "SAME")
  np.testing.assert_array_equal(models.max_pool_2x2(x), ref(x))
  w = jax.random.normal(jax.random.key(1), ref(x).shape)
  g = jax.grad(lambda v: (models.max_pool_2x2(v) * w).sum())(x)
  g_ref = jax.grad(lambda v: (ref(v) * w).sum())(x)
  np.testing.assert_allclose(g, g_ref, atol=1e-6)


def test_upsample_forms_agree_with_keras_nearest_neighbour():
  x = jax.random.normal(jax.random.key(0), (2, 4, 5, 3))
  up = models.upsample_2x(x)
  assert up.shape == (2, 8, 10, 3)
  for dy in (0, 1):
    for dx in (0, 1):
      np.testing.assert_array_equal(up[:, dy::2, dx::2], x)


@pytest.mark.parametrize("min_channels", [0, 1 << 30])  # 'SAME' as 2x2 or as 3x3 kernels
@pytest.mark.parametrize("padding,hw,cin,cout", [("SAME", 4, 8, 8), ("VALID", 8, 8, 16),
                                                 ("SAME", 14, 16, 1), ("SAME", 5, 3, 2),
                                                 ("SAME", 7, 32, 4)])
def test_upsample_conv_is_conv_of_the_upsampled_image(padding, hw, cin, cout, min_channels,
                                                      monkeypatch):
  monkeypatch.setattr(models.layers, "SAME_2X2_MIN_CHANNELS", min_channels)
  x = jax.random.normal(jax.random.key(0), (3, hw, hw + 1, cin))
  fused = models.UpsampleConv(cout, padding)
  plain = nn.Conv(cout, (3, 3), padding=padding)
  v = fused.init(jax.random.key(1), x)
  v_plain = plain.init(jax.random.key(1), models.upsample_2x(x))
  # Same parameter names, shapes and initial values as the nn.Conv it stands for.
  jax.tree.map(np.testing.assert_array_equal, v, v_plain)
  v = jax.tree.map(lambda k: k + 0.1 * jax.random.normal(jax.random.key(2), k.shape), v)
  y = jax.jit(fused.apply)(v, x)  # jitted whole: eager, each operation compiles alone
  y_plain = jax.jit(lambda v, x: plain.apply(v, models.upsample_2x(x)))(v, x)
  assert y.shape == y_plain.shape
  np.testing.assert_allclose(y, y_plain, atol=1e-5, rtol=1e-5)
  w = jax.random.normal(jax.random.key(3), y.shape)
  g = jax.jit(jax.grad(lambda v, x: (fused.apply(v, x) * w).sum(), argnums=(0, 1)))(v, x)
  g_plain = jax.jit(jax.grad(lambda v, x: (plain.apply(v, models.upsample_2x(x)) * w).sum(),
                             argnums=(0, 1)))(v, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5), g, g_plain)


def test_patch_conv_is_a_same_conv():
  x = jax.random.uniform(jax.random.key(0), (3, 9, 7, 2))
  v = models.PatchConv(5).init(jax.random.key(1), x)
  plain = nn.Conv(5, (3, 3), padding="SAME")
  jax.tree.map(np.testing.assert_array_equal, v, plain.init(jax.random.key(1), x))
  v = jax.tree.map(lambda k: k + 0.1 * jax.random.normal(jax.random.key(2), k.shape), v)
  np.testing.assert_allclose(models.PatchConv(5).apply(v, x), plain.apply(v, x), atol=1e-5)
  w = jax.random.normal(jax.random.key(3), (3, 9, 7, 5))
  g = jax.grad(lambda v, x: (models.PatchConv(5).apply(v, x) * w).sum(), argnums=(0, 1))(v, x)
  g_plain = jax.grad(lambda v, x: (plain.apply(v, x) * w).sum(), argnums=(0, 1))(v, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5), g, g_plain)


def test_upsample_conv_kernel_sums_the_taps_that_read_the_same_pixel():
  """The 2x2 phase kernel, tap by tap: each output phase of the conv over the upsampled
  image from the kernel's taps alone; the einsum's 3x3 'SAME' kernel is it with a zero row
  and column, and its 2x2 'VALID' kernel is it."""
  kernel = jax.random.normal(jax.random.key(0), (3, 3, 2, 3))
  k = models.layers.upsample_conv_kernel(kernel).reshape(2, 2, 2, 2, 2, 3)  # d e in q p out
  # Phase 0 = (taps 0 + 1, tap 2), phase 1 = (tap 0, taps 1 + 2), rows then columns.
  rows = [[kernel[0] + kernel[1], kernel[2]], [kernel[0], kernel[1] + kernel[2]]]
  for q in (0, 1):
    for d in (0, 1):
      r = rows[q][d]  # 3 columns, in, out
      cols = [[r[0] + r[1], r[2]], [r[0], r[1] + r[2]]]
      for p in (0, 1):
        for e in (0, 1):
          np.testing.assert_allclose(k[d, e, :, q, p], cols[p][e], rtol=1e-6, atol=1e-6)
  k3 = models.layers.einsum_upsample_conv_kernel(kernel, "SAME").reshape(3, 3, 2, 2, 2, 3)
  # Even outputs read taps (0, 1) of the 2x2 phase 1 at offsets (0, 1); odd ones phase 0
  # at offsets (1, 2).
  for r, (phase, offset) in enumerate(((1, 0), (0, 1))):
    for s, (col_phase, col_offset) in enumerate(((1, 0), (0, 1))):
      block = np.zeros((3, 3, 2, 3), np.float32)
      block[offset:offset + 2, col_offset:col_offset + 2] = k[:, :, :, phase, col_phase]
      np.testing.assert_allclose(k3[:, :, :, r, s], block, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(models.layers.einsum_upsample_conv_kernel(kernel, "VALID"),
                             models.layers.upsample_conv_kernel(kernel), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (27, 30, 2)])
def test_convnet_equals_the_literal_lax_conv_forms_values_and_gradients(image_shape):
  """configs/conv_wide.py's net (stride-2 convs, 'nearest' stages as UpsampleConv) against
  the same net written with nn.Conv over upsample_2x, with the same parameters: outputs and
  the gradients of every parameter and of the input, to float tolerance."""
  enc = models.ConvNetEncoder(features=(16, 32, 64), latent_channels=8)
  dec = models.ConvNetDecoder(features=(64, 32, 16), image_shape=image_shape)
  x = jax.random.uniform(jax.random.key(0), (3, *image_shape))
  v_enc = jax.jit(enc.init)(jax.random.key(1), x)
  v_dec = jax.jit(dec.init)(jax.random.key(2), jax.jit(enc.apply)(v_enc, x))
  params = {"encoder": v_enc["params"], "decoder": v_dec["params"]}

  def literal(params, x):
    h, w, c = image_shape
    z = enc.apply({"params": params["encoder"]}, x)  # stride-2 nn.Conv: literal already
    d = len(dec.features)
    for i, f in enumerate(dec.features):
      z = nn.Conv(f, (3, 3), padding="SAME").apply({"params": params["decoder"][f"conv{i}"]},
                                                     models.upsample_2x(z))
      z = nn.relu(z[:, :-(-h // 2**(d - 1 - i)), :-(-w // 2**(d - 1 - i))])
    return nn.Conv(c, (3, 3), padding="SAME").apply({"params": params["decoder"]["output"]}, z)

  def fast(params, x):
    return dec.apply({"params": params["decoder"]}, enc.apply({"params": params["encoder"]}, x))

  # Each form jitted whole (eager, every operation would compile on its own).
  np.testing.assert_allclose(jax.jit(fast)(params, x), jax.jit(literal)(params, x),
                             atol=1e-5, rtol=1e-5)
  w = jax.random.normal(jax.random.key(3), (3, *image_shape))
  grads = [jax.jit(jax.grad(lambda p, x, f=f: (f(p, x) * w).sum(), argnums=(0, 1)))(params, x)
           for f in (fast, literal)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), *grads)


def test_conv_encoder_equals_the_literal_lecture_encoder():
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  v = models.ConvEncoder().init(jax.random.key(1), x)
  v_plain = models.PlainConvEncoder().init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, v, v_plain)
  np.testing.assert_allclose(jax.jit(models.ConvEncoder().apply)(v, x),
                             jax.jit(models.PlainConvEncoder().apply)(v, x), atol=1e-5)
  w = jax.random.normal(jax.random.key(2), (4, 4, 4, 8))
  g, g_plain = (jax.jit(jax.grad(lambda v, m=m: (m.apply(v, x) * w).sum()))(v)
                for m in (models.ConvEncoder(), models.PlainConvEncoder()))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5), g, g_plain)


def test_conv_decoder_equals_the_literal_lecture_decoder():
  z = jax.random.normal(jax.random.key(0), (4, 4, 4, 8))
  v = models.ConvDecoder().init(jax.random.key(1), z)
  v_plain = models.PlainConvDecoder().init(jax.random.key(1), z)
  jax.tree.map(np.testing.assert_array_equal, v, v_plain)  # checkpoints interchangeable
  out = jax.jit(models.ConvDecoder().apply)(v, z)
  assert out.shape == (4, 28, 28, 1)
  np.testing.assert_allclose(out, jax.jit(models.PlainConvDecoder().apply)(v, z), atol=1e-5)
  w = jax.random.normal(jax.random.key(2), out.shape)
  g, g_plain = (jax.jit(jax.grad(lambda v, z, m=m: (m.apply(v, z) * w).sum(),
                                 argnums=(0, 1)))(v, z)
                for m in (models.ConvDecoder(), models.PlainConvDecoder()))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5), g, g_plain)


def test_unknown_lecture_model_is_refused():
  with pytest.raises(ValueError, match="unknown model"):
    models.make_autoencoder("vae")
