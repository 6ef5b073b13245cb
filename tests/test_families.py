"""What holds for every model holds for every family: one harness, parametrized.

For each family's config (shrunk to a few steps on the tiny dataset) it checks:
  * a run stopped mid-epoch (as by SIGTERM), resumed, ends bit-identical to an unbroken
    run (parameters and every metrics row, reported terms included); the runs train in
    the test's process, so the three share their compiled steps;
  * 4 devices give the 1-device run's numbers (to float summation order): one process
    (tests/four_devices.py) trains every family's 4-device run beside the harness;
  * the encoder and decoder checkpoint items restore apart with a plain orbax client
    that knows only the module and the item's name;
  * the compression tools encode and decode through a codes file (a VQ-VAE's also as
    codebook indices, which give back its code exactly).
The bad values of each family's fields are rows of tests/test_errors.py and
tests/test_registry.py.
"""
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from ae_jax.training import checkpoint, train, workdir as workdir_lib
from ae_jax.compression import compress
from ae_jax import models
from conftest import REPO, apply_flags, config_from_flags, scripted_stop

# family -> (config file, overrides that shrink it)
FAMILIES = {
    "dense": ("configs/dense.py", []),
    "conv": ("configs/denoise.py", []),
    "deep": ("configs/deep.py", []),
    "sparse": ("configs/sparse.py", []),
    "convnet": ("configs/conv_wide.py", ["--config.encoder.features=(4, 8, 8)",
                                         "--config.decoder.features=(8, 8, 4)"]),
    "vae": ("configs/beta_vae.py", ["--config.encoder.hidden=(16,)",
                                    "--config.decoder.hidden=(16,)",
                                    "--config.loss_warmup_steps=4"]),
    "codec": ("configs/codec.py", ["--config.encoder.analysis.hidden=(16,)",
                                   "--config.encoder.analysis.latent_dim=8",
                                   "--config.decoder.hidden=(16,)"]),
    # The GDN families at 2 levels (y 7x7, z 4x4), not the configs' 3 + 2: less to compile,
    # every kind of layer still there (GDN, IGDN, both fast strided forms, h_a, h_s).
    "codec_conv": ("configs/codec_conv.py", ["--config.encoder.analysis.features=4",
                                             "--config.encoder.analysis.latent_channels=6",
                                             "--config.encoder.analysis.levels=2",
                                             "--config.decoder.features=4",
                                             "--config.decoder.levels=2"]),
    "hyperprior": ("configs/hyperprior.py", ["--config.encoder.analysis.features=4",
                                             "--config.encoder.analysis.latent_channels=6",
                                             "--config.encoder.analysis.levels=2",
                                             "--config.encoder.hyper_features=4",
                                             "--config.encoder.hyper_levels=1",
                                             "--config.decoder.features=4",
                                             "--config.decoder.levels=2"]),
    # Codes unused for 2 steps restart: resets happen before and after the kill.
    "vq": ("configs/vqvae.py", ["--config.encoder.features=(4, 8)",
                                "--config.decoder.features=(8, 4)",
                                "--config.encoder.codebook_size=16",
                                "--config.encoder.dead_code_after=2"]),
    "iwae": ("configs/iwae.py", ["--config.encoder.hidden=(16,)",
                                 "--config.decoder.hidden=(16,)",
                                 "--config.importance_samples=3"]),
    "vamp": ("configs/vamp.py", ["--config.encoder.hidden=(16,)",
                                 "--config.decoder.hidden=(16,)",
                                 "--config.encoder.prior.components=8"]),
    "beta_tc": ("configs/beta_tc_vae.py", ["--config.encoder.hidden=(16,)",
                                           "--config.decoder.hidden=(16,)",
                                           "--config.encoder.dataset_size=512"]),
    "wae": ("configs/wae.py", ["--config.encoder.net.hidden=(16,)",
                               "--config.encoder.net.latent_dim=4",
                               "--config.decoder.hidden=(16,)"]),
    "rae": ("configs/rae.py", ["--config.encoder.net.hidden=(16,)",
                               "--config.encoder.net.latent_dim=4",
                               "--config.decoder.hidden=(16,)"]),
    "aae": ("configs/aae.py", ["--config.encoder.net.hidden=(16,)",
                               "--config.encoder.net.latent_dim=4",
                               "--config.encoder.discriminator_hidden=(8,)",
                               "--config.decoder.hidden=(16,)"]),
}
# family -> [(overrides, the one line it is refused with)]: each family's bad values.
BAD_INPUTS = {
    "iwae": [(["--config.encoder.kl=analytic"], "reports it in closed form: set "
              "--config.encoder.kl=sampled"),
             (["--config.loss=mse"], "the loss must be a likelihood, not 'mse'"),
             (["--config.importance_samples=0"], "bad config value importance_samples=0")],
    "vamp": [(["--config.encoder.prior.components=0"],
              "bad config value encoder.prior.components=0: it must be a positive integer"),
             (["--config.encoder.kl=analytic"],
              "encoder.kl='analytic': it must be 'sampled' (or None) with a prior other "
              "than N(0, I)")],
    "beta_tc": [(["--config.encoder.sampling=mcmc"],
                 "bad config value encoder.sampling='mcmc': it must be one of ('mws', 'mss')"),
                (["--config.loss_weights.kl=1.0"],
                 "config.loss_weights names ['kl'], which the model does not report")],
    "wae": [(["--config.encoder.kernel=gauss"],
             "bad config value encoder.kernel='gauss': it must be one of ('imq', 'rbf')"),
            (["--config.encoder.net.latent_dim=0"], "bad config value encoder.net.latent_dim=0")],
    "rae": [(["--config.weight_decay.decoder=-1.0"],
             "bad config value weight_decay.decoder=-1.0: it must be a number >= 0"),
            (["--config.weight_decay.discriminator=1.0"],
             "unknown config field weight_decay.discriminator")],
    "aae": [(["--config.encoder.discriminator_hidden=(0,)"],
             "bad config value encoder.discriminator_hidden=(0,): it must be a tuple of "
             "positive integers"),
            (["--config.encoder.discriminator_learning_rate=-1.0"],
             "bad config value encoder.discriminator_learning_rate=-1.0"),
            (["--config.encoder.net.name=nope"], "unknown encoder 'nope' (config field "
             "encoder.net.name)")],
}
GENERATIVE = ("vae", "iwae", "vamp", "beta_tc", "wae", "rae", "aae")
CODECS = ("codec", "codec_conv", "hyperprior")  # coded by their priors ('entropy')
TINY = ["--config.batch_size=32", "--config.steps_per_epoch=3", "--config.num_epochs=2",
        "--config.eval_examples=64", "--config.eval_batch_size=32", "--config.num_images=4",
        "--config.checkpoint_every_steps=1", "--config.progress_bar=False"]
TIMING = ("seconds", "images_per_sec")


def _args(family, tiny_data, workdir):
  path, extra = FAMILIES[family]
  idx_dir, data_dir = tiny_data
  return ["--config", path, "--workdir", workdir, f"--config.data_dir={data_dir}",
          f"--config.idx_dir={idx_dir}", *TINY, *extra]


HARNESS = "test_every_family_resumes_shards_restores_apart_and_compresses"


@pytest.fixture(scope="module")
def four_devices(request, tiny_data, tmp_path_factory):
  """wait(family) -> the workdir of the family's run on 4 devices (one epoch). One process
  (tests/four_devices.py) trains the runs of every family this session tests, in the
  harness's order, beside the harness's own runs."""
  families = [item.callspec.params["family"] for item in request.session.items
              if getattr(item, "originalname", None) == HARNESS]
  root = str(tmp_path_factory.mktemp("four_devices"))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} "
             "--xla_force_host_platform_device_count=4")
  with open(os.path.join(root, "log.txt"), "w") as log:
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "four_devices.py"),
                             root, *tiny_data, *families], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)

  def wait(family):
    workdir = os.path.join(root, family)
    t0 = time.time()
    while not os.path.exists(workdir + ".done"):
      if os.path.exists(workdir + ".failed"):
        with open(workdir + ".failed") as f:
          pytest.fail(f"the 4-device run of {family} failed:\n{f.read()[-3000:]}")
      if proc.poll() is not None or time.time() - t0 > 300:
        with open(os.path.join(root, "log.txt")) as f:
          pytest.fail(f"no 4-device run of {family}:\n{f.read()[-3000:]}")
      time.sleep(0.05)
    return workdir

  yield wait
  proc.kill()
  proc.wait()


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]


def _config(family, tiny_data, workdir):
  """The family's config with the same overrides as its command line."""
  return config_from_flags(FAMILIES[family][0], _args(family, tiny_data, workdir))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_resumes_shards_restores_apart_and_compresses(family, tiny_data,
                                                                   four_devices, tmp_path,
                                                                   monkeypatch):
  reference, stopped = (str(tmp_path / n) for n in ("reference", "stopped"))
  config = _config(family, tiny_data, stopped)
  train.train_and_evaluate(_config(family, tiny_data, reference), reference)

  # Stopped mid-epoch after step 2 (as by SIGTERM: that step saved), resumed: bit-identical
  # to the unbroken run. (SIGKILL itself, and a half-written checkpoint after it, is
  # tests/test_resume.py's, for the loop every family shares.)
  scripted_stop(monkeypatch, 2)
  with pytest.raises(train.Interrupted):
    train.train_and_evaluate(config, stopped)
  assert max(workdir_lib.checkpoint_steps(stopped)) == 2
  scripted_stop(monkeypatch, None)
  state = train.train_and_evaluate(config, stopped)
  assert int(state.step) == 6
  jax.tree.map(np.testing.assert_array_equal, checkpoint.restore_autoencoder(stopped)[1],
               checkpoint.restore_autoencoder(reference)[1])
  rows = _rows(reference)
  assert _rows(stopped) == rows and [r["step"] for r in rows] == [3, 6]
  if family == "sparse":  # its reported term and metric are logged, train and val
    assert {"train_l1", "train_code_mean", "val_l1", "val_code_mean",
            "val_reconstruction"} <= set(rows[0])
    assert rows[0]["val_loss"] == pytest.approx(
        rows[0]["val_reconstruction"] + 1e-4 * rows[0]["val_l1"], rel=1e-5)
  if family == "vae":  # sampling, the KL warmed up over 4 steps to beta = 4, the ELBO
    assert {"train_kl", "train_elbo", "val_kl", "val_elbo"} <= set(rows[0])
    assert rows[0]["val_loss"] == pytest.approx(  # at step 3: 3/4 of beta
        rows[0]["val_reconstruction"] + 3.0 * rows[0]["val_kl"], rel=1e-5)
    assert rows[1]["val_loss"] == pytest.approx(
        rows[1]["val_reconstruction"] + 4.0 * rows[1]["val_kl"], rel=1e-5)
  if family.startswith("vq"):  # commitment weighed 0.25, the codebook term (loss mode) 1
    assert {"train_commitment", "train_perplexity", "train_usage", "val_perplexity",
            "val_usage"} <= set(rows[0])
    codebook = rows[1].get("val_codebook", 0.0)
    assert ("val_codebook" in rows[1]) == (family == "vq_loss")
    assert rows[1]["val_loss"] == pytest.approx(
        rows[1]["val_reconstruction"] + 0.25 * rows[1]["val_commitment"] + codebook, rel=1e-5)
    assert 1 <= rows[1]["val_perplexity"] <= 16 and 0 < rows[1]["val_usage"] <= 1

  if family in ("iwae", "vamp"):  # a sampled KL; IWAE: the K-sample bound, below the -ELBO
    assert {"train_kl", "train_elbo", "val_kl", "val_elbo"} <= set(rows[0])
    for row in rows:
      if family == "iwae":
        assert row["val_loss"] < -row["val_elbo"] and row["train_loss"] < -row["train_elbo"]
      else:
        assert row["val_loss"] == pytest.approx(-row["val_elbo"], rel=1e-5)

  if family == "beta_tc":  # alpha MI + beta TC + gamma dimension-wise KL; kl their sum
    for row in rows:
      assert row["val_loss"] == pytest.approx(
          row["val_reconstruction"] + row["val_mutual_info"] + 6 * row["val_total_correlation"]
          + row["val_dimension_kl"], rel=1e-5)
      assert row["val_kl"] == pytest.approx(row["val_mutual_info"] + row[
          "val_total_correlation"] + row["val_dimension_kl"], rel=1e-4, abs=1e-3)
      assert row["val_elbo"] == pytest.approx(-(row["val_reconstruction"] + row["val_kl"]))
  if family in ("wae", "rae"):  # the summed squared error plus the weighted term
    term, weight = ("mmd", 3e-2) if family == "wae" else ("code_l2", 1e-4)
    row = rows[-1]
    assert row["val_loss"] == pytest.approx(row["val_reconstruction"] + weight * row[
        f"val_{term}"], rel=1e-5)
    assert row["val_reconstruction"] == pytest.approx(784 * row["val_mse"], rel=1e-4)

  if family == "aae":  # the discriminator's term is its own loss, not the model's
    for row in rows:
      assert {"train_adversarial", "train_discrimination", "val_discrimination"} <= set(row)
      assert row["val_loss"] == pytest.approx(
          row["val_reconstruction"] + 0.5 * row["val_adversarial"], rel=1e-5)
    # Both optimizers' states were checkpointed: the resume above is bit-identical.
    assert set(state.opt_state.inner_states) == {"model", "discriminator"}

  if family in CODECS:  # the rate (bits per image) weighed in by the config's weight
    assert {"train_rate", "val_rate", "val_reconstruction"} <= set(rows[0])
    assert ("val_rate_z" in rows[0]) == (family == "hyperprior")  # z's share, logged
    assert rows[0]["val_loss"] == pytest.approx(
        rows[0]["val_reconstruction"] + config.loss_weights.rate * rows[0]["val_rate"],
        rel=1e-5)

  # 4 devices: the same numbers but for the order of the sums over devices. A VQ-VAE's
  # assignment is discrete: its EMA sums, added in another order (codebook 5e-8 apart after
  # one step), break exact ties another way (on this data many z_e are the same background
  # vector, and dead codes restart at them), and a few vectors go to another code. Measured
  # (EMA, 2 epochs): perplexity 0.45% apart, SSIM 4.2e-4 (of 0.0105), the rest < 1e-4.
  # 4 devices (tests/four_devices.py, beside these runs): its one epoch is the first row.
  four = _rows(four_devices(family))
  assert len(four) == 1
  for row, ref in zip(four, rows):
    assert row.keys() == ref.keys()
    for key in ref:
      rel = 1e-5
      if family.startswith("vq"):
        rel = 1e-2 if key.endswith(("perplexity", "usage")) else 1e-3
      assert row[key] == pytest.approx(ref[key], rel=rel, abs=1e-7), key

  # Encoder and decoder items, each restored by a plain orbax client from the module alone.
  model = models.from_config(config, (28, 28, 1))
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  abstract = lambda module, example: {"params": jax.eval_shape(
      lambda e: module.init(models.shape_rngs(), e),
      example)["params"]}
  step_dir = os.path.join(reference, "checkpoints", "6")
  enc = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "encoder"),
                                           abstract(model.encoder, x))
  z = jax.jit(model.encoder.apply)(enc, x)  # jitted: eager GDN layers compile op by op
  dec = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "decoder"),
                                           abstract(model.decoder, z))
  restored = jax.nn.sigmoid(jax.jit(model.decoder.apply)(dec, z))
  full_model, full = checkpoint.restore_autoencoder(reference)
  reconstruct = jax.jit(lambda v, x: full_model.apply(v, x, method="reconstruct"))
  np.testing.assert_array_equal(restored, reconstruct(full, x))

  # Generative families: the sample command decodes draws from the run's prior (an RAE's:
  # the ex-post mixture, fitted to the training codes and stored beside the run).
  if family in GENERATIVE:
    from ae_jax.evaluation import sample  # pylint: disable=import-outside-toplevel
    drawn = sample.generate(reference, num=4, seed=1)
    assert drawn.shape == (4, 28, 28, 1) and np.all((drawn >= 0) & (drawn <= 1))
    assert os.path.exists(os.path.join(reference, "ex_post_density.npz")) == (family == "rae")

  # The compression tools: images -> codes file -> images, with only each half restored.
  images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), np.uint8)
  codes = compress.encode(reference, images, "entropy" if family in CODECS else "float32")
  path = str(tmp_path / "codes.aec")
  with open(path, "wb") as f:
    f.write(compress.codes_to_bytes(codes))
  decoded = compress.decode(compress.load_codes(path), reference)
  expected = reconstruct(full, jnp.asarray(images, jnp.float32) / 255)
  np.testing.assert_allclose(decoded, expected, atol=1e-6)
  if family.startswith("vq"):  # codebook indices: 7x7 positions of 4 bits, 25 B per image
    indices = compress.encode(reference, images)
    assert indices.quant == "index" and indices.bytes_per_image == 25
    with open(path, "wb") as f:
      f.write(compress.codes_to_bytes(indices))
    loaded = compress.load_codes(path)
    np.testing.assert_array_equal(loaded.dequantized(), codes.dequantized())  # z_q exactly
    np.testing.assert_array_equal(compress.decode(loaded, reference), decoded)
    from ae_jax.core import quality  # pylint: disable=import-outside-toplevel
    from ae_jax.compression import rate_distortion
    row, = rate_distortion.autoencoder_rows(reference, images)  # measured by its indices
    assert (row["method"], row["bytes_per_image"]) == ("autoencoder index", 25)
    assert row["setting"] == "vq+convnet 7x7x16"
    assert row["psnr"] == pytest.approx(
        quality.report(quality.to_uint8(decoded), images)["psnr"])


@pytest.mark.parametrize("family,overrides,message",
                         [(f, o, m) for f, rows in BAD_INPUTS.items() for o, m in rows])
def test_every_familys_bad_values_are_one_line(family, overrides, message, tiny_data,
                                               tmp_path):
  from ae_jax.core.errors import UserError  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "run")
  config = apply_flags(_config(family, tiny_data, workdir), overrides)
  with pytest.raises(UserError) as caught:
    train.train_and_evaluate(config, workdir)
  assert message in str(caught.value) and "\n" not in str(caught.value)
  assert not os.path.exists(os.path.join(workdir, "checkpoints"))
