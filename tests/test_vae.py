"""The VAE: its likelihood losses, KL warm-up, what a run logs (reconstruction, KL, ELBO),
and the two commands, the importance-sampled NLL and sampling from the prior, on a tiny
VAE trained by `train.train_and_evaluate`."""
import json
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ae_jax.evaluation import likelihood, sample
from ae_jax.core import metrics
from ae_jax import models
from ae_jax.training import objectives, steps, train
from ae_jax.training import workdir as workdir_lib
from ae_jax.training import runs
from configs import beta_vae, vae


def tiny_vae_config(tiny_data):
  config = vae.get_config()
  config.idx_dir, config.data_dir = tiny_data
  config.encoder.hidden, config.encoder.latent_dim = (32,), 2
  config.decoder.hidden = (32,)
  config.batch_size, config.steps_per_epoch, config.num_epochs = 32, 8, 2
  config.eval_batch_size, config.num_images, config.progress_bar = 64, 4, False
  return config


@pytest.fixture(scope="module")
def vae_run(tiny_data, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("vae") / "run")
  train.train_and_evaluate(tiny_vae_config(tiny_data), workdir)
  return workdir


def test_likelihood_losses_are_summed_per_image_nats():
  logits = jax.random.normal(jax.random.key(0), (3, 28, 28, 1)) * 3
  x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
  # jitted: eager, each operation compiles alone
  loss = jax.jit(metrics.reconstruction_loss, static_argnums=0)
  np.testing.assert_allclose(loss("bernoulli", logits, x),
                             784 * jax.jit(metrics.bce_from_logits)(logits, x), rtol=1e-5)
  gauss = jax.jit(lambda logits, x: -jax.scipy.stats.norm.logpdf(
      x, jax.nn.sigmoid(logits), 1.0).sum(axis=(1, 2, 3)))(logits, x)
  np.testing.assert_allclose(loss("gaussian", logits, x), gauss, rtol=1e-5)
  assert set(metrics.LIKELIHOODS) < set(metrics.LOSSES)


def test_the_kl_weight_warms_up_linearly_from_the_step():
  config = tiny_vae_config(("", ""))
  model = models.from_config(config, (28, 28, 1))
  # jitted (eager, each operation compiles alone): the same state, to the bit, and the
  # train step taken whole
  state = jax.jit(lambda rng: steps.create_train_state(model, config, (28, 28, 1), rng))(
      jax.random.key(config.seed))
  train_step = jax.jit(steps.train_step, static_argnums=(3, 5, 6))
  x = jax.random.uniform(jax.random.key(3), (8, 28, 28, 1))
  weights = (("kl", 4.0),)
  for step, factor in ((0, 0.0), (5, 0.5), (10, 1.0), (30, 1.0)):
    at = state.replace(step=jnp.int32(step))
    _, out = train_step(at, x, x, "bernoulli", jax.random.key(1), weights, 10)
    assert float(out["loss"]) == pytest.approx(
        float(out["reconstruction"]) + 4.0 * factor * float(out["kl"]), rel=1e-5), step
  _, out = train_step(state, x, x, "bernoulli", jax.random.key(1), weights, 0)
  assert float(out["loss"]) == pytest.approx(
      float(out["reconstruction"]) + 4.0 * float(out["kl"]), rel=1e-5)
  assert beta_vae.get_config().loss_weights.kl == 4.0


def test_a_vae_run_logs_reconstruction_kl_and_elbo(vae_run):
  rows = workdir_lib.MetricsLog(vae_run, enabled=False).rows()
  assert [r["step"] for r in rows] == [8, 16]
  for row in rows:
    for split in ("train", "val"):
      assert row[f"{split}_elbo"] == pytest.approx(
          -(row[f"{split}_reconstruction"] + row[f"{split}_kl"]), rel=1e-6)
      assert row[f"{split}_kl"] > 0
    # beta = 1, no warm-up: the objective is the negative ELBO
    assert row["val_loss"] == pytest.approx(-row["val_elbo"], rel=1e-5)
  assert rows[1]["val_elbo"] > rows[0]["val_elbo"]


def test_the_code_of_a_trained_vae_is_its_mean(vae_run):
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress
  encoder, variables = checkpoint.restore_encoder(vae_run)
  x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)
  # Both sides jitted (eager, each operation compiles alone).
  mean, _ = jax.jit(lambda v, x: encoder.apply(v, x, method="posterior"))(variables, x / 255.0)
  np.testing.assert_array_equal(jax.jit(encoder.apply)(variables, x / 255.0), mean)
  codes = compress.encode(vae_run, x, "float32")
  np.testing.assert_allclose(codes.dequantized(), mean, rtol=1e-6)


def test_the_iwae_bound_is_finite_below_the_elbo_and_tightens_with_k(vae_run):
  one = likelihood.estimate(vae_run, num_samples=1, batch_size=64)
  many = likelihood.estimate(vae_run, num_samples=64, batch_size=64)
  assert one["num_images"] == many["num_images"] == 128
  assert all(math.isfinite(v) for v in many.values() if isinstance(v, float))
  assert one["nll"] == one["neg_elbo"]  # one sample: the IWAE bound is the ELBO
  assert many["nll"] <= many["neg_elbo"]  # per image, by Jensen
  assert many["nll"] < one["nll"] - 3 * one["nll_se"] / 10
  # The ELBO of K draws estimates what training logged (one draw, other keys).
  val_elbo = workdir_lib.MetricsLog(vae_run, enabled=False).rows()[-1]["val_elbo"]
  assert many["neg_elbo"] == pytest.approx(-val_elbo, abs=4 * many["neg_elbo_se"] + 1)
  assert likelihood.estimate(vae_run, num_samples=64, batch_size=48) != many  # other draws
  again = likelihood.estimate(vae_run, num_samples=64, batch_size=64)
  assert again == many  # a function of (seed, batch)


def test_the_likelihood_command_prints_a_table(vae_run, capsys):
  assert likelihood.main(["--workdir", vae_run, "--num_samples", "8", "--max_images",
                          "20"]) == 0
  out = capsys.readouterr().out
  assert "20 images, K = 8" in out and "| NLL (IWAE bound, K = 8) |" in out


def _copy_with(vae_run, tmp_path, **changes):
  run = tmp_path / "changed"
  shutil.copytree(vae_run, run)
  cfg = json.loads((run / "config.json").read_text())
  for key, value in changes.items():
    cfg[key] = value
  (run / "config.json").write_text(json.dumps(cfg))
  return str(run)


@pytest.mark.parametrize("argv,change,message", [
    (["--num_samples", "0"], {}, "argument --num_samples: '0' is not a positive integer"),
    ([], {"encoder": {"name": "dense", "latent_dim": 2}},
     "is not a VAE run: its encoder 'dense' gives no q(z|x)"),
    ([], {"loss": "bce"}, "was trained with loss 'bce', a mean per pixel, not a likelihood"),
    (["--split", "validation"], {}, "has no split 'validation': set --split"),
])
def test_the_likelihood_commands_bad_input_is_one_line(vae_run, tmp_path, capsys, argv,
                                                       change, message):
  run = _copy_with(vae_run, tmp_path, **change) if change else vae_run
  assert _exit_code(likelihood.main, ["--workdir", run, *argv]) == 2
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1


def _exit_code(main, argv) -> int:
  """A command's exit status, whether it returns it or argparse exits with it."""
  try:
    return main(argv)
  except SystemExit as e:
    return e.code


def test_samples_from_the_prior_and_the_manifold(vae_run, tmp_path, capsys):
  out = str(tmp_path / "grid.png")
  assert sample.main(["--workdir", vae_run, "--out", out, "--num", "10"]) == 0
  grid = np.asarray(Image.open(out))
  assert grid.shape == (3 * 28 + 2 * 2, 4 * 28 + 3 * 2)  # 10 images in rows of 4
  a = sample.generate(vae_run, num=10, seed=0)
  assert a.shape == (10, 28, 28, 1) and not np.array_equal(a, sample.generate(vae_run, 10, 1))
  np.testing.assert_array_equal(a, sample.generate(vae_run, 10, 0))
  manifold = str(tmp_path / "manifold.png")
  assert sample.main(["--workdir", vae_run, "--out", manifold, "--manifold"]) == 0
  assert np.asarray(Image.open(manifold)).shape == (15 * 28, 15 * 28)
  codes = sample.manifold_codes()
  assert codes.shape == (225, 2) and codes[0, 0] == pytest.approx(-1.6448536, abs=1e-6)
  assert codes[1, 0] > codes[0, 0] and codes[1, 1] == codes[0, 1]  # x along a row
  assert sample.main(["--workdir", vae_run, "--out", manifold, "--manifold"]) == 2
  assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("change,argv,message", [
    ({"encoder": {"name": "vae", "hidden": [32], "latent_dim": 3, "activation": "relu"}},
     ["--manifold"], "--manifold needs a 2-dim code"),
    ({"encoder": {"name": "dense", "latent_dim": 2}}, [], "has no prior to sample from"),
])
def test_the_sample_commands_bad_input_is_one_line(vae_run, tmp_path, capsys, change, argv,
                                                   message):
  run = _copy_with(vae_run, tmp_path, **change)
  assert sample.main(["--workdir", run, "--out", str(tmp_path / "x.png"), *argv]) == 2
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1


def test_objectives_elbo_only_for_likelihoods():
  row = {"val_reconstruction": 10.0, "val_kl": 2.0}
  objectives.add_elbo(row, "val_", "bce")
  assert "val_elbo" not in row
  objectives.add_elbo(row, "val_", "bernoulli")
  assert row["val_elbo"] == -12.0


def test_runs_from_before_the_warm_up_field_resume_and_keep_their_codes_hash(tiny_data):
  from ae_jax.compression import compress  # pylint: disable=import-outside-toplevel
  from ae_jax.training import config_lib
  record = workdir_lib.config_record(tiny_vae_config(tiny_data), (28, 28, 1))
  old = {k: v for k, v in record.items() if k != "loss_warmup_steps"}
  assert config_lib.upgrade_record(old) == record  # no difference: it resumes
  assert not config_lib.differences(config_lib.upgrade_record(old), record)
  assert runs.config_hash(old) == runs.config_hash(record)  # its codes decode
  assert runs.config_hash({**record, "loss_warmup_steps": 5}) != runs.config_hash(record)


def test_a_full_disk_while_writing_samples_is_one_line(vae_run, tmp_path, monkeypatch, capsys):
  import errno  # pylint: disable=import-outside-toplevel
  from ae_jax.core import plots  # pylint: disable=import-outside-toplevel

  def refuse(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", path)
  monkeypatch.setattr(plots, "save_image_grid", refuse)
  assert sample.main(["--workdir", vae_run, "--out", str(tmp_path / "grid.png")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"cannot write grid.png to {tmp_path}" in err
  assert err.rstrip().endswith("--out")
