"""What the determinism tests cannot see: they compare the code with itself, so a data
order, a noise stream or a check that is deterministic but wrong passes them. Each test
here pins one of those to what it must be (found by mutation testing)."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ae_jax.training import config_lib, steps, train
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.core import metrics, quality
from configs import dense


def _state(latent_dim=8):
  config = dense.get_config()
  config.encoder.latent_dim = latent_dim
  model = models.make_autoencoder("dense", latent_dim)
  return model, steps.create_train_state(model, config, (28, 28, 1))


@pytest.mark.parametrize("step", [0, 5])
def test_a_device_step_trains_on_the_documented_batch_noise_and_mean_loss(step):
  # Batch i of the epoch order, noised with key fold_in(noise_key(seed, 1), global step),
  # and the loss is the batch mean of the per-image loss, before the update.
  model, state = _state()
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 64))
  start = jax.tree.map(jnp.copy, state.replace(step=jnp.int32(step)))
  _, losses = steps.device_train_steps(start, images, perm, jnp.int32(1), num_steps=1,
                                       batch_size=16, seed=3, loc=0.5, scale=0.1,
                                       loss_kind="bce")
  clean = data.device_batch(images, perm, jnp.int32(1), 16)
  key = jax.random.fold_in(steps.noise_key(3, 1), step)  # stream 1: training, not eval's 2
  noisy = data.add_noise(key, clean, 0.5, 0.1)
  logits = model.apply({"params": state.params}, noisy)
  expected = metrics.reconstruction_loss("bce", logits, clean).mean()
  np.testing.assert_allclose(losses["loss"][0], expected, rtol=2e-6)


def test_an_epoch_has_only_whole_batches():
  config = dense.get_config()
  assert train._steps_per_epoch(config, 60000) == 468  # pylint: disable=protected-access
  config.batch_size = 32
  assert train._steps_per_epoch(config, 100) == 3  # pylint: disable=protected-access


def test_the_epoch_order_is_numpys_permutation_seeded_by_seed_and_epoch():
  # Pinned: a resume on another machine or version must draw the same order.
  assert data.epoch_permutation(0, 0, 10).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]
  assert data.epoch_permutation(0, 1, 10).tolist() == [9, 1, 3, 8, 7, 6, 0, 4, 2, 5]
  assert data.epoch_permutation(1, 0, 10).tolist() == [8, 4, 7, 0, 1, 2, 5, 9, 6, 3]


def test_each_epoch_of_a_run_draws_its_own_order(tiny_config, tmp_path, monkeypatch):
  asked = []
  real = data.epoch_permutation
  monkeypatch.setattr(data, "epoch_permutation",
                      lambda seed, epoch, n: asked.append((seed, epoch)) or real(seed, epoch, n))
  tiny_config.input_pipeline = "device"
  train.train_and_evaluate(tiny_config, str(tmp_path / "run"))
  assert asked == [(tiny_config.seed, 0), (tiny_config.seed, 1)]


def test_stream_noise_follows_the_global_step_and_is_clipped(tiny_data):
  builder = data.get_builder("fashion_mnist", tiny_data[1])
  batches = list(data.stream_epoch(builder, "train", batch_size=32, steps=3, epoch=1, seed=7,
                                   loc=0.5, scale=0.1, first_step=3))
  for i, (noisy, clean) in enumerate(batches):  # batch i of epoch 1 is global step 3 + i
    expected = data._add_noise_tf(clean, 3 + i, 7, 0.5, 0.1)  # pylint: disable=protected-access
    np.testing.assert_array_equal(noisy, np.asarray(expected))
  clean = batches[0][1]
  for loc, bound in ((-5.0, 0.0), (5.0, 1.0)):  # clipped to [0, 1] on both sides
    out = np.asarray(data._add_noise_tf(clean, 0, 7, loc, 0.1))  # pylint: disable=protected-access
    assert (out == bound).all()


def test_identical_images_have_the_documented_100_db():
  images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), np.uint8)
  np.testing.assert_allclose(quality.psnr(images, images), 100.0)


def test_the_picture_grid_shows_the_first_eval_images(tiny_config):
  from ae_jax.training import parallel  # pylint: disable=import-outside-toplevel
  tiny_config.num_images, tiny_config.eval_batch_size = 2, 2
  _, state = _state(tiny_config.encoder.latent_dim)
  images = np.random.default_rng(0).integers(1, 256, (5, 28, 28, 1), np.uint8)
  _, shown = train.evaluate(state, images, tiny_config, parallel.make_mesh())
  np.testing.assert_allclose(shown["original"], images[:2] / np.float32(255), rtol=1e-6)


def test_nested_config_fields_are_compared():
  old, new = {"noise": {"loc": 0.5, "scale": 0.0}}, {"noise": {"loc": 0.5, "scale": 0.1}}
  assert config_lib.differences(old, new) == ["noise.scale"]


def _two_epoch_run(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 2
  train.train_and_evaluate(tiny_config, workdir)
  return workdir, os.path.join(workdir, "checkpoints")


def test_a_step_whose_encoder_is_not_its_states_is_set_aside(tiny_config, tmp_path, capfd):
  workdir, ckpts = _two_epoch_run(tiny_config, tmp_path)
  shutil.rmtree(os.path.join(ckpts, "8", "encoder"))  # step 4's encoder in step 8
  shutil.copytree(os.path.join(ckpts, "4", "encoder"), os.path.join(ckpts, "8", "encoder"))
  tiny_config.num_epochs = 3
  train.train_and_evaluate(tiny_config, workdir)
  err = capfd.readouterr().err
  assert "checkpoint step 8 cannot be restored (its encoder or decoder differs" in err
  assert "Resuming" in err and "from step 4" in err
  assert os.listdir(os.path.join(workdir, "damaged_checkpoints"))[0].startswith("8-")


def test_a_step_folder_holding_another_step_is_set_aside(tiny_config, tmp_path, capfd):
  workdir, ckpts = _two_epoch_run(tiny_config, tmp_path)
  shutil.rmtree(os.path.join(ckpts, "8"))
  shutil.copytree(os.path.join(ckpts, "4"), os.path.join(ckpts, "8"))  # step 4's files
  tiny_config.num_epochs = 3
  state = train.train_and_evaluate(tiny_config, workdir)
  err = capfd.readouterr().err
  assert "checkpoint step 8 cannot be restored (it holds step 4)" in err and "from step 4" in err
  assert int(state.step) == 12
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [4, 8, 12]


def test_a_state_gone_non_finite_is_never_saved_mid_epoch(tiny_config, tmp_path, monkeypatch):
  # The losses of a call come before each step's update: a call can end finite in its
  # losses with non-finite parameters. The check before each save must stop there.
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  tiny_config.checkpoint_every_steps, tiny_config.steps_per_call = 1, 1
  tiny_config.input_pipeline = "device"
  real = steps.device_train_steps

  def overflowing(state, *args, **kwargs):
    state, losses = real(state, *args, **kwargs)
    if int(state.step) == 2:
      state = state.replace(params=jax.tree.map(lambda p: p * jnp.nan, state.params))
    return state, losses

  monkeypatch.setattr(steps, "device_train_steps", overflowing)
  workdir = str(tmp_path / "run")
  with pytest.raises(train.UserError, match="parameters became non-finite .* by step 2"):
    train.train_and_evaluate(tiny_config, workdir)
  assert checkpoint.checkpoint_steps(workdir) == [1]  # step 2 was never written
  assert not os.path.exists(os.path.join(workdir, "damaged_checkpoints"))
