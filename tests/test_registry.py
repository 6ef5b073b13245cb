"""The model zoo: configs name encoders and decoders (built-in or the user's own), the
families' shapes and parameter counts, and one clear line for every misfit."""
import os
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ae_jax import models
from ae_jax.models import registry
from ae_jax.training import objectives
from ae_jax.core.errors import UserError
from configs import beta_vae, conv, conv_wide, deep, default, dense, denoise, sparse, vae


def n_params(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def _init(config, image_shape=(28, 28, 1), batch=3):
  model, code = models.checked_autoencoder(config, image_shape)
  x = jax.random.uniform(jax.random.key(0), (batch, *image_shape))
  # jitted, as every apply here: eager, a model compiles one executable per operation
  init = jax.jit(model.init)
  return model, code, init({"params": jax.random.key(1), "sample": jax.random.key(2)}, x), x


@pytest.mark.parametrize("module,count,code", [
    (dense, 101_200, (64,)), (conv, 4_385, (4, 4, 8)), (denoise, 4_385, (4, 4, 8)),
    # Keras blog: 784-128-64-32-64-128-784 and Dense(32) -> Dense(784)
    (deep, 222_384, (32,)), (sparse, 50_992, (32,)),
    # Flax examples/vae: 784-500-(20, 20) and 20-500-784
    (vae, 815_824, (20,)), (beta_vae, 815_824, (20,))])
def test_each_config_builds_its_family_with_the_expected_size(module, count, code):
  _, got_code, variables, _ = _init(module.get_config())
  assert got_code == code and n_params(variables["params"]) == count


@pytest.mark.parametrize("image_shape,code", [((28, 28, 1), (4, 4, 8)), ((32, 32, 3), (4, 4, 8)),
                                              ((64, 64, 3), (8, 8, 8)), ((27, 30, 2), (4, 4, 8))])
@pytest.mark.parametrize("down,up,norm", [("stride", "transpose", "none"),
                                          ("maxpool", "nearest", "group"),
                                          ("stride", "subpixel", "layer")])
def test_the_general_conv_net_takes_any_image_size(image_shape, code, down, up, norm):
  config = conv_wide.get_config()
  config.encoder.downsample, config.decoder.upsample = down, up
  config.encoder.norm = config.decoder.norm = norm
  model, got, variables, x = _init(config, image_shape, batch=2)
  assert got == code
  out = jax.jit(model.apply, static_argnames="method")(variables, x, method="reconstruct")
  assert out.shape == (2, *image_shape) and float(out.min()) >= 0 and float(out.max()) <= 1
  # The halves apart, with their own subtrees.
  z = jax.jit(model.encoder.apply)({"params": variables["params"]["encoder"]}, x)
  np.testing.assert_allclose(jax.nn.sigmoid(jax.jit(model.decoder.apply)(
      {"params": variables["params"]["decoder"]}, z)), out, atol=1e-6)


def test_nearest_upsampling_is_upsample_then_conv_for_any_kernel_size():
  """The 3x3 'nearest' stage is the lecture's UpsampleConv: the same parameters and values
  as nn.Conv over the upsampled input; other kernels are that literally."""
  z = jax.random.normal(jax.random.key(0), (2, 4, 5, 6))
  for k in (3, 5):
    dec = models.ConvNetDecoder(features=(4,), kernel_size=k, image_shape=(8, 10, 1))
    v = dec.init(jax.random.key(1), z)
    plain = nn.Conv(4, (k, k), padding="SAME")
    h = nn.relu(plain.apply({"params": v["params"]["conv0"]}, models.upsample_2x(z)))
    ref = nn.Conv(1, (k, k), padding="SAME").apply({"params": v["params"]["output"]}, h)
    np.testing.assert_allclose(dec.apply(v, z), ref, atol=1e-5)


def test_a_conv_encoder_with_a_dense_decoder():
  config = conv.get_config()
  config.decoder = ml_collections.ConfigDict({"name": "dense"})
  model, code, variables, x = _init(config)
  assert code == (4, 4, 8)
  assert variables["params"]["decoder"]["output"]["kernel"].shape == (128, 784)
  assert model.apply(variables, x).shape == x.shape


def test_the_sparse_encoder_reports_its_l1_term_and_code_mean():
  config = sparse.get_config()
  model, _, variables, x = _init(config)
  losses, reported = objectives.reported_names(model, (28, 28, 1))
  assert (losses, reported) == (["l1"], ["code_mean"])
  _, terms, mets = objectives.apply(model.apply, variables["params"], x, jax.random.key(0))
  z = model.apply(variables, x, method="encode")
  np.testing.assert_allclose(terms["l1"], jnp.abs(z).sum(axis=1), rtol=1e-6)
  np.testing.assert_allclose(mets["code_mean"], z.mean(axis=1), rtol=1e-6)
  rec = jnp.ones(3)
  np.testing.assert_allclose(objectives.total(rec, terms, (("l1", 1e-4),)),
                             1 + 1e-4 * terms["l1"], rtol=1e-6)


def test_the_vae_encoder_samples_reports_its_kl_and_codes_its_mean():
  model, code, variables, x = _init(vae.get_config())
  assert code == (20,)
  assert objectives.reported_names(model, (28, 28, 1)) == (["kl"], [])
  enc = {"params": variables["params"]["encoder"]}
  mean, logvar = model.encoder.apply(enc, x, method="posterior")
  # Without the 'sample' stream (the compression tools, restore helpers): the mean.
  np.testing.assert_array_equal(model.encoder.apply(enc, x), mean)
  np.testing.assert_array_equal(model.apply(variables, x, method="encode"), mean)
  # With it (the train and eval steps): mean + exp(logvar / 2) * eps, eps from the stream.
  key = jax.random.key(7)
  z, sown = model.encoder.apply(enc, x, rngs={"sample": key}, mutable=["losses"])
  eps = (z - mean) / jnp.exp(0.5 * logvar)
  assert not np.allclose(z, mean) and abs(float(eps.mean())) < 0.3
  np.testing.assert_array_equal(z, model.encoder.apply(enc, x, rngs={"sample": key}))
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1 - logvar, axis=1)
  np.testing.assert_allclose(sown["losses"]["kl"][0], kl, rtol=1e-6)
  assert kl.shape == (3,) and bool((kl > 0).all())
  # The objective: reconstruction + beta * kl, beta = loss_weights.kl
  _, terms, _ = objectives.apply(model.apply, variables["params"], x, key)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-6)


@pytest.mark.parametrize("module", [dense, conv, conv_wide, deep, vae])
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_parameters(module):
  config = module.get_config()
  config.dtype = "bfloat16"
  model, _, variables, x = _init(config)
  assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  apply = jax.jit(model.apply, static_argnames="method")
  assert apply(variables, x).dtype == jnp.float32  # logits for the loss
  assert apply(variables, x, method="encode").dtype == jnp.bfloat16
  ref = models.from_config(module.get_config(), (28, 28, 1))
  np.testing.assert_allclose(apply(variables, x, method="reconstruct"),
                             jax.jit(ref.apply, static_argnames="method")(
                                 variables, x, method="reconstruct"), atol=0.05)


USER_MODULE = textwrap.dedent('''
    import flax.linen as nn

    class WideEncoder(nn.Module):
      width: int = 256
      latent_dim: int = 16

      @nn.compact
      def __call__(self, x):
        x = nn.relu(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.latent_dim)(x)
''')


@pytest.mark.parametrize("how", ["module", "file"])
def test_a_users_own_module_is_named_in_the_config(tmp_path, monkeypatch, how):
  (tmp_path / "my_zoo_models.py").write_text(USER_MODULE)
  if how == "module":
    monkeypatch.chdir(tmp_path)  # importable from the working folder, as with python -m
    name = "my_zoo_models:WideEncoder"
  else:
    name = f"{tmp_path}/my_zoo_models.py:WideEncoder"
  config = dense.get_config()
  config.encoder = ml_collections.ConfigDict({"name": name, "width": 32, "latent_dim": 5})
  _, code, variables, _ = _init(config)
  assert code == (5,) and variables["params"]["encoder"]["Dense_0"]["kernel"].shape == (784, 32)


def _resolve_error(name: str) -> str:
  with pytest.raises(UserError) as e:
    registry.resolve(name, "encoder")
  assert "\n" not in str(e.value)
  return str(e.value)


def test_a_users_module_that_raises_on_import_is_shown_where_it_raised(tmp_path, monkeypatch):
  """It was 'cannot import boom_models (RuntimeError: boom): put its folder on PYTHONPATH or
  run from there': wrong advice, and the user's file and line hidden."""
  monkeypatch.chdir(tmp_path)
  (tmp_path / "boom_models.py").write_text("import helpers\n\nhelpers.setup(3)\n")
  (tmp_path / "helpers.py").write_text("def setup(n):\n  raise RuntimeError(f'boom {n}')\n")
  assert _resolve_error("boom_models:Enc") == (
      "encoder.name 'boom_models:Enc': importing boom_models raised RuntimeError: boom 3 at "
      "helpers.py:2 (raise RuntimeError(f'boom {n}')), called from boom_models.py:3 "
      "(helpers.setup(3)): fix it there")
  # A dependency the module imports is missing: the module was found, so no PYTHONPATH advice.
  (tmp_path / "needs_dep.py").write_text("import numpy\nimport no_such_dependency_xyz\n")
  assert _resolve_error("needs_dep:Enc").endswith(
      "importing needs_dep raised ModuleNotFoundError: No module named 'no_such_dependency_xyz' "
      "at needs_dep.py:2 (import no_such_dependency_xyz): fix it there")
  # A syntax error has no frame of its own: its file and line.
  (tmp_path / "typo_models.py").write_text("x = 1\ndef f(:\n")
  assert "raised SyntaxError: " in _resolve_error(f"{tmp_path}/typo_models.py:Enc")
  assert _resolve_error(f"{tmp_path}/typo_models.py:Enc").endswith(
      "at typo_models.py:2: fix it there")
  # Not found (the module, or a package above it; a path to no file): where to put it.
  for name in ("no_such_module_xyz:Enc", "no_such_package_xyz.models:Enc"):
    assert _resolve_error(name).endswith(": put its folder on PYTHONPATH or run from there")
  assert _resolve_error("missing.py:Enc") == (
      f"encoder.name 'missing.py:Enc': no file {tmp_path}/missing.py: give the path of a .py "
      "file (from the folder you run in, or absolute) or 'module:Class' for a module on "
      "PYTHONPATH")


@pytest.mark.parametrize("change,match", [
    ({"encoder": {"name": "gan"}}, r"unknown encoder 'gan' \(config field encoder.name\): "
                                   r"choose one of \['adversarial', 'beta_tc', 'conv', 'convnet', "
                                   r"'dense', 'factorized', 'gdn', 'hyperprior', 'mlp', 'rae', "
                                   r"'sparse', 'vae', 'vq', 'wae'\]"),
    ({"encoder": {"name": "vae", "hidden": (0,)}}, "encoder.hidden=.*a tuple of positive"),
    ({"encoder": {"name": "vae", "latent_dim": -2}}, "encoder.latent_dim=-2"),
    ({"decoder": {"name": "sparse"}}, "unknown decoder 'sparse'"),
    ({"encoder": {"name": "dense", "width": 3}},
     r"unknown config field encoder.width: encoder 'dense' takes \['latent_dim'\]"),
    ({"encoder": {"name": "dense", "latent_dim": 0}},
     r"bad config value encoder.latent_dim=0: it must be a positive integer "
     r"\(--config.encoder.latent_dim=...\)"),
    ({"encoder": {"name": "dense", "dtype": "bfloat16"}}, "the compute dtype is config.dtype"),
    ({"encoder": {"name": "mlp", "hidden": (64, -1)}},
     "encoder.hidden=.*a tuple of positive integers"),
    ({"encoder": {"name": "mlp", "activation": "swish"}}, "encoder.activation='swish'.*one of"),
    ({"encoder": {"name": "vae", "kernel_init": "kaiming"}},
     r"^bad config value encoder.kernel_init='kaiming': it must be one of \('lecun_normal', "
     r"'glorot_uniform', 'he_normal', 'torch'\) \(--config.encoder.kernel_init=...\)$"),
    ({"encoder": {"name": "wae", "net": {"name": "mlp", "kernel_init": "Torch"}}},
     r"^bad config value encoder.net.kernel_init='Torch': it must be one of \("),
    ({"encoder": {"name": "adversarial", "net": {"name": "vae"},
                  "discriminator_kernel_init": "uniform"}},
     r"^bad config value encoder.discriminator_kernel_init='uniform': it must be one of \("),
    ({"encoder": {"name": "convnet", "features": ()}}, "encoder.features=.*at least one"),
    ({"encoder": {"name": "convnet", "downsample": "avg"}}, "encoder.downsample='avg'"),
    ({"decoder": {"name": "convnet", "norm": "batch"}}, "decoder.norm='batch'"),
    ({"decoder": {"name": "convnet", "upsample": "bilinear"}}, "decoder.upsample='bilinear'"),
    ({"encoder": {"name": "convnet", "kernel_size": 0}}, "encoder.kernel_size=0"),
    # misfits, named on both sides
    ({"decoder": {"name": "conv"}}, r"decoder 'conv' cannot take the code of encoder 'dense', "
                                    r"shape \(64,\): ValueError: ConvDecoder takes codes of"),
    ({"encoder": {"name": "convnet", "features": (8, 8)}, "decoder": {"name": "convnet",
                                                                      "features": (8,)}},
     "ConvNetDecoder makes 14x14 images from a 7x7 code with 1 stages, smaller than 28x28: "
     "give it 2 stages"),
    ({"decoder": {"name": "dense", "image_shape": (32, 32, 3)}},
     r"^decoder 'dense' turns the code \(64,\) of encoder 'dense' into \(32, 32, 3\), not the "
     r"shape of the images, \(28, 28, 1\): change the decoder's fields$"),
    # A user's module: its quoted name took a possessive ('my_models:WideEncoder''s code).
    ({"encoder": {"name": "ae_jax.models.dense:DenseEncoder", "latent_dim": 8},
      "decoder": {"name": "ae_jax.models.dense:MLPDecoder", "image_shape": (14, 14, 1)}},
     r"^decoder 'ae_jax.models.dense:MLPDecoder' turns the code \(8,\) of encoder "
     r"'ae_jax.models.dense:DenseEncoder' into \(14, 14, 1\), not the shape of the images"),
    ({"encoder": {"name": "no_such_module_xyz:Enc"}}, "cannot import no_such_module_xyz"),
    ({"encoder": {"name": "ae_jax.core.metrics:psnr"}}, "has no Flax module"),
])
def test_every_misfit_is_one_line_naming_both_sides(change, match):
  config = dense.get_config()
  for group, spec in change.items():
    config[group] = ml_collections.ConfigDict(spec)
  with pytest.raises(UserError, match=match) as e:
    models.checked_autoencoder(config, (28, 28, 1))
  assert "\n" not in str(e.value)


def test_the_lecture_conv_encoder_refuses_other_image_sizes_in_one_line():
  with pytest.raises(UserError, match=r"encoder 'conv' cannot take the images of shape "
                                      r"\(32, 32, 3\).*'convnet', takes any size"):
    models.checked_autoencoder(conv.get_config(), (32, 32, 3))


def test_default_config_is_the_lecture_dense_model():
  config = default.get_config()
  assert config.encoder.to_dict() == {"name": "dense", "latent_dim": 64}
  assert config.decoder.to_dict() == {"name": "dense"}
  assert config.dtype == "float32" and not config.loss_weights


class _SamplingEncoder(nn.Module):
  """The lecture's dense encoder plus a draw from the 'sample' stream, reported as a term
  (what a VAE's reparameterization does)."""

  @nn.compact
  def __call__(self, x):
    z = nn.Dense(4)(x.reshape(x.shape[0], -1))
    self.sow("losses", "draw", jax.random.uniform(self.make_rng("sample"), (x.shape[0],)))
    return z


def test_a_models_sampling_key_is_a_function_of_seed_and_step():
  from ae_jax.training import steps  # pylint: disable=import-outside-toplevel
  model = models.Autoencoder(encoder=_SamplingEncoder(), decoder=models.DenseDecoder())
  config = dense.get_config()
  state = steps.create_train_state(model, config, (28, 28, 1))
  images = jnp.zeros((64, 28, 28, 1), jnp.uint8)
  perm = jnp.arange(64, dtype=jnp.int32)

  def draws(state, seed, num_steps=2):
    kw = dict(num_steps=num_steps, batch_size=8, seed=seed, loc=0.5, scale=0.0,
              loss_kind="bce", weights=(("draw", 0.0),))
    return steps.device_train_steps(jax.tree.map(jnp.copy, state), images, perm,
                                    jnp.int32(0), **kw)

  _, a = draws(state, seed=0)
  _, b = draws(state, seed=0)
  _, c = draws(state, seed=1)
  np.testing.assert_array_equal(a["draw"], b["draw"])  # recomputable: same (seed, step)
  assert a["draw"][0] != a["draw"][1]  # a new draw every step
  assert not np.array_equal(a["draw"], c["draw"])  # and every seed
  # A run resumed at step 1 draws what the unbroken run drew at step 1.
  _, resumed = draws(state.replace(step=jnp.int32(1)), seed=0, num_steps=1)
  assert resumed["draw"][0] == a["draw"][1]


def test_the_general_conv_net_trains_on_cifar_shaped_images(cifar_like_dir, tmp_path):
  from ae_jax.training import checkpoint, train  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress
  config = conv_wide.get_config()
  config.dataset, config.data_dir = "cifar_like", cifar_like_dir
  config.encoder.features, config.decoder.features = (8, 8, 8), (8, 8, 8)
  config.batch_size, config.steps_per_epoch, config.num_epochs = 16, 4, 2
  config.eval_batch_size, config.num_images, config.progress_bar = 32, 4, False
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  rows = train.workdir_lib.MetricsLog(workdir, enabled=False).rows()
  assert [r["step"] for r in rows] == [4, 8] and rows[1]["val_loss"] < rows[0]["val_loss"]
  encoder, variables = checkpoint.restore_encoder(workdir)
  images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), np.uint8)
  assert encoder.apply(variables, images / 255.0).shape == (3, 4, 4, 8)
  codes = compress.encode(workdir, images)
  assert compress.decode(codes, workdir).shape == (3, 32, 32, 3)
