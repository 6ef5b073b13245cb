"""Train steps, both pipelines end to end, resume and workdir refusal."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import real_run_env, set_model
from ae_jax.training import checkpoint, train
from ae_jax import models
from ae_jax.core.errors import UserError
from conftest import read_tensorboard

METRIC_KEYS = {"epoch", "step", "train_loss", "val_loss", "val_bce", "val_mse", "val_psnr",
               "val_ssim", "val_noisy_psnr", "val_psnr_gain", "images_per_sec", "seconds"}


@pytest.mark.parametrize("kind,loss", [("dense", "bce"), ("conv", "mse")])
def test_one_step_lowers_the_loss_on_a_fixed_batch(tiny_config, kind, loss):
  config = tiny_config
  set_model(config, kind)
  config.loss = loss
  state = train.create_train_state(models.make_autoencoder(kind), config, (28, 28, 1))
  clean = jax.random.uniform(jax.random.key(3), (16, 28, 28, 1))
  losses = []
  for _ in range(3):
    state, out = train.train_step_jit(state, clean, clean, loss)
    losses.append(float(out["loss"]))
  assert int(state.step) == 3
  assert losses[2] < losses[1] < losses[0]


def _images_differ(path_a, path_b) -> bool:
  return not np.array_equal(np.asarray(Image.open(path_a)), np.asarray(Image.open(path_b)))


def _check_tensorboard(logdir: str, rows: list[dict]) -> None:
  """TensorBoard shows each row's scalars and image grid once, at the row's step."""
  assert len(os.listdir(logdir)) == 1  # one event file per run
  scalars, images = read_tensorboard(logdir)
  steps = [r["step"] for r in rows]
  assert set(scalars) == METRIC_KEYS - {"epoch", "step"}
  for tag, points in scalars.items():
    assert [s for s, _ in points] == steps
    for r, (_, value) in zip(rows, points):
      assert value == pytest.approx(r[tag], rel=1e-6)
  assert sorted(images) == steps
  for image in images.values():
    assert image.shape[0] == 3 * 28 and image.max() > 0  # originals, noisy, restored


@pytest.mark.parametrize("pipeline", ["device", "stream"])
def test_train_and_evaluate_writes_every_output(tiny_config, tmp_path, pipeline):
  config = tiny_config
  set_model(config, "conv")
  config.input_pipeline = pipeline
  config.noise.scale = 0.1
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 8
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [4, 8]
  for r in rows:
    assert set(r) == METRIC_KEYS and all(np.isfinite(v) for v in r.values())
  assert rows[1]["train_loss"] < rows[0]["train_loss"]
  saved = json.load(open(os.path.join(workdir, "config.json")))
  assert saved["encoder"] == saved["decoder"] == {"name": "conv"}
  assert saved["image_shape"] == [28, 28, 1]
  grid = np.asarray(Image.open(os.path.join(workdir, "images", "reconstructions.png")))
  assert grid.ndim == 3 and grid.shape[0] > 100  # three rows: originals, noisy, restored
  assert os.path.getsize(os.path.join(workdir, "images", "loss.png")) > 1000
  _check_tensorboard(os.path.join(workdir, "tensorboard"), rows)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8"]


def test_device_and_stream_pipelines_train_equally_well(tiny_config, tmp_path):
  finals = {}
  for pipeline in ("device", "stream"):
    config = tiny_config
    config.input_pipeline, config.num_epochs, config.steps_per_epoch = pipeline, 3, None
    train.train_and_evaluate(config, str(tmp_path / pipeline))
    rows = [json.loads(l) for l in open(tmp_path / pipeline / "metrics.jsonl")]
    finals[pipeline] = rows[-1]["val_loss"]
  # Different shuffles and noise streams, same model and data: the same loss within 5%.
  assert abs(finals["device"] - finals["stream"]) < 0.05 * finals["device"]


def test_resume_continues_from_the_checkpoint_without_duplicating_epochs(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, workdir)
  tiny_config.num_epochs = 3  # train longer in the same workdir
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 12
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["epoch"] for r in rows] == [1, 2, 3]
  # A rerun of a finished run trains nothing more and leaves the metrics alone.
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 12
  assert [json.loads(l)["epoch"] for l in open(os.path.join(workdir, "metrics.jsonl"))] == [1, 2, 3]


def test_a_workdir_of_another_config_is_refused(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, workdir)
  before = open(os.path.join(workdir, "config.json")).read()
  tiny_config.encoder.latent_dim = 8
  with pytest.raises(UserError, match="another config.*encoder.latent_dim"):
    train.train_and_evaluate(tiny_config, workdir)
  assert open(os.path.join(workdir, "config.json")).read() == before


def test_diverging_loss_stops_keeps_the_good_checkpoint_and_resumes(tiny_config, tmp_path):
  set_model(tiny_config, "conv")
  tiny_config.loss, tiny_config.num_epochs = "mse", 1
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config, workdir)  # one good epoch: checkpoint at step 4
  good = checkpoint.restore_encoder(workdir)[1]
  tiny_config.num_epochs, tiny_config.learning_rate = 2, 1e9
  with pytest.raises(UserError, match=r"loss became nan in epoch 2 at step [5-8]: lower "
                                      r"--config.learning_rate and rerun: it resumes from "
                                      r"the last good checkpoint, step 4$"):
    train.train_and_evaluate(tiny_config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  jax.tree.map(np.testing.assert_array_equal, checkpoint.restore_encoder(workdir)[1], good)
  tiny_config.learning_rate = 1e-3  # resume the same run with a changed learning rate
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 8
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["epoch"] for r in rows] == [1, 2] and np.isfinite(rows[1]["train_loss"])


def test_parameters_that_overflow_are_never_saved(tiny_config, tmp_path):
  # With a checkpoint every step, the last update before the loss shows NaN can already
  # have made the parameters non-finite: that state must not become "the last good
  # checkpoint", or every rerun would resume into the same NaN.
  set_model(tiny_config, "conv")
  tiny_config.loss, tiny_config.num_epochs = "mse", 1
  tiny_config.checkpoint_every_steps, tiny_config.learning_rate = 1, 1e12
  workdir = str(tmp_path / "run")
  with pytest.raises(UserError, match="(loss|parameters) became (nan|non-finite)") as error:
    train.train_and_evaluate(tiny_config, workdir)
  # None is kept, so none is promised (the rerun starts over).
  assert str(error.value).endswith("lower --config.learning_rate and rerun")
  # Moved, not deleted: here the step before the NaN loss, whose parameters gave it.
  assert os.listdir(os.path.join(workdir, "damaged_checkpoints"))
  assert not checkpoint.checkpoint_steps(workdir)
  tiny_config.learning_rate = 1e-4  # the advice: a lower learning rate resumes and finishes
  state = train.train_and_evaluate(tiny_config, workdir)
  assert int(state.step) == 4
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert len(rows) == 1 and np.isfinite(rows[0]["val_loss"])


def test_a_non_finite_loss_names_its_cause_and_a_checkpoint_only_where_one_is_kept():
  from configs import vae  # pylint: disable=import-outside-toplevel
  config = vae.get_config()
  config.loss_weights.kl = 1e38
  fix = train._divergence_fix  # pylint: disable=protected-access
  # Every term finite, the weighted sum not: the weight, whatever the step.
  at = {"loss": np.inf, "kl": 2.5, "reconstruction": 540.0}
  assert fix(config, 7, at, 4) == ("loss_weights.kl=1e+38 times its term (on average 2.5 per "
                                   "image) overflows float32: lower --config.loss_weights.kl "
                                   "and rerun with --restart")
  # A term itself non-finite: at step 1 the initial parameters, before any update.
  at = {"loss": np.nan, "kl": np.nan, "reconstruction": 540.0}
  assert fix(config, 1, at, None).startswith("the initial parameters already give it")
  # Later, diverged updates: the learning rate, and the checkpoint only where there is one.
  assert fix(config, 7, at, None) == "lower --config.learning_rate and rerun"
  assert fix(config, 7, at, 4).endswith("it resumes from the last good checkpoint, step 4")


def test_steps_per_call_follows_the_measured_choice_per_backend():
  from configs import conv, dense  # pylint: disable=import-outside-toplevel
  # dense on a CPU: the divisor of the epoch nearest 32, so every call has one length
  assert train._steps_per_call(dense.get_config(), 468, "cpu") == 36
  assert train._steps_per_call(dense.get_config(), 480, "cpu") == 32
  assert train._steps_per_call(dense.get_config(), 467, "cpu") == 32  # a prime: no divisor
  assert train._steps_per_call(conv.get_config(), 468, "cpu") == 1
  assert train._steps_per_call(conv.get_config(), 468, "gpu") == 468  # one call per epoch
  config = conv.get_config()
  config.steps_per_call = 5
  assert train._steps_per_call(config, 468, "gpu") == 5


def test_later_runs_of_a_prepared_dataset_need_no_tensorflow(tiny_config, tmp_path):
  """The first run records the dataset (ae_jax_prepared/<name>.v2.json) and caches its
  splits; a later run on the device pipeline then trains in a process where TensorFlow
  cannot even be imported, and gives exactly the same numbers."""
  tiny_config.input_pipeline = "device"
  train.train_and_evaluate(tiny_config, str(tmp_path / "first"))
  record = os.path.join(tiny_config.data_dir, "ae_jax_prepared", "fashion_mnist.v2.json")
  assert json.load(open(record))["splits"] == {"train": 512, "test": 128}
  code = f"""
import sys
sys.modules["tensorflow"] = sys.modules["tensorflow_datasets"] = None  # any import fails
from ae_jax.training import train
from configs import dense
config = dense.get_config()
config.update(dict(idx_dir={tiny_config.idx_dir!r}, data_dir={tiny_config.data_dir!r},
                   batch_size=32, steps_per_epoch=4, num_epochs=2, eval_batch_size=50,
                   num_images=4, progress_bar=False, input_pipeline="device"))
train.train_and_evaluate(config, {str(tmp_path / "second")!r})
"""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-1500:]
  rows = {name: [json.loads(l) for l in open(tmp_path / name / "metrics.jsonl")]
          for name in ("first", "second")}
  for a, b in zip(rows["first"], rows["second"]):
    assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]
  assert len(rows["second"]) == 2


def test_quick_compiled_init_gives_the_same_parameters():
  """steps.initial_state (train.py's init) compiles with steps.QUICK_COMPILE (~6x faster):
  same parameters as the default compile, for both models and three seeds. Run without the
  test suite's quicker compile settings (conftest.real_run_env), as real runs are."""
  code = """
import jax, numpy as np
from ae_jax import models
from ae_jax.training import steps
from configs import conv, dense
assert steps.QUICK_COMPILE["xla_backend_optimization_level"] == 1
for module in (dense, conv):
  config = module.get_config()
  model = models.from_config(config, (28, 28, 1))
  init = jax.jit(lambda rng: steps.create_train_state(model, config, (28, 28, 1), rng).params)
  for seed in (0, 1, 2):
    config.seed = seed
    quick = steps.initial_state(model, config, (28, 28, 1)).params
    jax.tree.map(np.testing.assert_array_equal, quick, init(jax.random.key(seed)))
print("same")
"""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  done = subprocess.run([sys.executable, "-c", code], cwd=repo, env=real_run_env(),
                        capture_output=True, text=True)
  assert done.stdout.strip() == "same", done.stderr[-1500:]


def _resident_images(n: int = 64):
  """Random uint8 images on the device and an epoch order, as the device pipeline has them."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  images = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), np.uint8)
  return jnp.asarray(images), jnp.asarray(data.epoch_permutation(0, 0, n))


def test_one_compiled_step_serves_every_seed():
  """The seed is traced, not static: a second seed reuses the executable (and the persistent
  compilation cache), and the noise still follows the seed."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.training import steps  # pylint: disable=import-outside-toplevel
  from configs import denoise  # pylint: disable=import-outside-toplevel
  config = denoise.get_config()
  model = models.make_autoencoder("conv")
  images, perm = _resident_images()
  init = steps.create_train_state(model, config, (28, 28, 1))  # one optimizer object
  steps.device_train_steps.clear_cache()
  losses = {}
  for seed in (0, 1, 0):
    state = jax.tree.map(jnp.copy, init)  # the step donates its state
    _, loss = steps.device_train_steps(state, images, perm, jnp.int32(0), num_steps=1,
                                       batch_size=32, seed=seed, loc=0.5, scale=0.1,
                                       loss_kind="bce")
    losses.setdefault(seed, []).append(float(loss["loss"][0]))
  assert steps.device_train_steps._cache_size() == 1  # pylint: disable=protected-access
  assert losses[0][0] == losses[0][1] != losses[1][0]  # same init, different noise


def test_a_second_run_of_an_equal_model_finds_its_step_traced():
  """Each run builds its model and optimizer anew (a notebook's second run, a sweep, a
  stopped run resumed in-process): equal ones are the same static parts of the state, so
  the jitted step is traced once; another learning rate is another step."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.training import steps  # pylint: disable=import-outside-toplevel
  from configs import rae  # pylint: disable=import-outside-toplevel  (weight decay: a chain)
  images, perm = _resident_images()
  steps.device_train_steps.clear_cache()

  def one_step(learning_rate):
    config = rae.get_config()
    config.learning_rate = learning_rate
    model = models.from_config(config, (28, 28, 1))  # a new, equal module each time
    state = steps.create_train_state(model, config, (28, 28, 1))
    return steps.device_train_steps(state, images, perm, jnp.int32(0), num_steps=1,
                                    batch_size=32, seed=0, loc=0.0, scale=0.0,
                                    loss_kind="mse")[1]["loss"][0]

  first = one_step(1e-3)
  assert float(one_step(1e-3)) == float(first)
  assert steps.device_train_steps._cache_size() == 1  # pylint: disable=protected-access
  one_step(1e-4)
  assert steps.device_train_steps._cache_size() == 2  # pylint: disable=protected-access


def test_unrolled_scan_gives_the_same_state_and_losses():
  """The CPU fast path (4 steps per loop iteration, here with a remainder: 6 steps) gives
  bit for bit what a scan of one step per iteration gives."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.training import steps  # pylint: disable=import-outside-toplevel
  from configs import denoise  # pylint: disable=import-outside-toplevel
  config = denoise.get_config()
  model = models.make_autoencoder("dense")
  images, perm = _resident_images()
  init = steps.create_train_state(model, config, (28, 28, 1))
  out = {}
  for unroll in (1, 4):
    state = jax.tree.map(jnp.copy, init)  # the step donates its state
    args = (state, images, perm, jnp.int32(0))
    # Compiled as every run compiles it: the suite's quicker legacy emitters (conftest)
    # round the two loop forms differently; XLA's default emitters do not.
    compiled = steps.device_train_steps.lower(
        *args, num_steps=6, batch_size=8, seed=0, loc=0.5, scale=0.1, loss_kind="bce",
        unroll=unroll).compile(compiler_options={"xla_cpu_use_fusion_emitters": True})
    out[unroll] = compiled(*args, seed=0)
  assert train._scan_unroll("cpu") == 4 and train._scan_unroll("gpu") == 1
  assert len(set(np.asarray(out[1][1]["loss"]).tolist())) == 6  # six different steps' losses
  for a, b in zip(jax.tree.leaves(out[1]), jax.tree.leaves(out[4])):
    np.testing.assert_array_equal(a, b)


def test_evaluation_shows_only_real_images_when_there_are_fewer_than_num_images(tiny_config):
  from ae_jax.training import parallel, steps  # pylint: disable=import-outside-toplevel
  tiny_config.num_images, tiny_config.eval_batch_size = 4, 8
  state = steps.create_train_state(models.make_autoencoder("dense"), tiny_config, (28, 28, 1))
  images = np.random.default_rng(0).integers(1, 256, (3, 28, 28, 1), np.uint8)
  val, shown = train.evaluate(state, images, tiny_config, parallel.make_mesh())
  assert {k: v.shape[0] for k, v in shown.items()} == {"original": 3, "noisy": 3, "restored": 3}
  np.testing.assert_allclose(shown["original"], images / np.float32(255), rtol=1e-6)
  assert 0 < val["val_loss"] < 1


def test_every_step_draws_new_noise():
  """The training noise follows the step: the same batch at two consecutive steps gets two
  draws. With a learning rate too small to move the parameters, the two losses differ with
  noise and are equal without it."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.training import steps  # pylint: disable=import-outside-toplevel
  from configs import denoise  # pylint: disable=import-outside-toplevel
  config = denoise.get_config()
  config.learning_rate = 1e-30
  images, _ = _resident_images()
  perm = jnp.concatenate([jnp.arange(32), jnp.arange(32)]).astype(jnp.int32)  # batch 0 twice
  state = steps.create_train_state(models.make_autoencoder("dense"), config, (28, 28, 1))
  losses = {}
  for scale in (0.1, 0.0):
    _, loss = steps.device_train_steps(jax.tree.map(jnp.copy, state), images, perm,
                                       jnp.int32(0), num_steps=2, batch_size=32, seed=0,
                                       loc=0.5, scale=scale, loss_kind="bce")
    losses[scale] = np.asarray(loss["loss"])
  assert losses[0.0][0] == losses[0.0][1]  # the parameters did not move
  assert losses[0.1][0] != losses[0.1][1]


def test_evaluation_matches_the_metrics_computed_image_by_image(tiny_config):
  """Masked sums over a padded last batch, the fixed per-batch noise (seed, batch index),
  and the means: evaluate's figures against the metrics computed directly."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  from ae_jax.core import metrics
  from ae_jax.training import parallel, steps
  tiny_config.eval_batch_size, tiny_config.noise.scale, tiny_config.num_images = 2, 0.1, 2
  state = steps.create_train_state(models.make_autoencoder("dense"), tiny_config, (28, 28, 1))
  images = np.random.default_rng(1).integers(0, 256, (3, 28, 28, 1), np.uint8)
  val, _ = train.evaluate(state, images, tiny_config, parallel.make_mesh())
  per_image = {k: [] for k in ("val_bce", "val_mse", "val_psnr", "val_ssim", "val_noisy_psnr")}
  for b, start in enumerate((0, 2)):
    clean = np.zeros((2, 28, 28, 1), np.float32)  # the padded batch, as eval draws its noise
    chunk = images[start:start + 2] / np.float32(255)
    clean[:len(chunk)] = chunk
    key = jax.random.fold_in(steps.noise_key(tiny_config.seed, 2), b)
    noisy = data.add_noise(key, jnp.asarray(clean), tiny_config.noise.loc, tiny_config.noise.scale)
    logits = state.apply_fn({"params": state.params}, noisy)
    restored = jax.nn.sigmoid(logits)
    for i in range(len(chunk)):
      one = lambda x: x[i:i + 1]  # pylint: disable=cell-var-from-loop
      per_image["val_bce"].append(metrics.bce_from_logits(one(logits), one(clean)))
      per_image["val_mse"].append(metrics.mse(one(restored), one(clean)))
      per_image["val_psnr"].append(metrics.psnr(one(restored), one(clean)))
      per_image["val_ssim"].append(metrics.ssim(one(restored), one(clean)))
      per_image["val_noisy_psnr"].append(metrics.psnr(one(noisy), one(clean)))
  for k, values in per_image.items():
    assert val[k] == pytest.approx(float(np.mean(values)), rel=1e-5), k
  assert val["val_loss"] == val["val_bce"]
  assert val["val_psnr_gain"] == pytest.approx(val["val_psnr"] - val["val_noisy_psnr"])
  again, _ = train.evaluate(state, images, tiny_config, parallel.make_mesh())
  assert again == val  # the evaluation noise is fixed: every epoch sees the same inputs
