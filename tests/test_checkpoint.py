"""Checkpoint round trip: encoder and decoder restored apart, the whole autoencoder, errors."""
import os

import jax
import numpy as np
import pytest

from ae_jax.training import checkpoint, train
from ae_jax.core.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
  from configs import conv  # pylint: disable=import-outside-toplevel
  config = conv.get_config()
  config.idx_dir, config.data_dir = tiny_data
  config.batch_size, config.steps_per_epoch, config.num_epochs = 32, 3, 1
  config.progress_bar = False
  workdir = str(tmp_path_factory.mktemp("ckpt") / "run")
  state = train.train_and_evaluate(config, workdir)
  return workdir, state


def test_encoder_alone_gives_the_live_models_codes(trained):
  workdir, state = trained
  x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
  # Both sides jitted (eager, each operation compiles alone).
  live = jax.jit(lambda v, x: state.apply_fn(v, x, method="encode"))({"params": state.params}, x)
  encoder, variables = checkpoint.restore_encoder(workdir)
  assert set(variables) == {"params"} and "decoder" not in variables["params"]
  np.testing.assert_array_equal(jax.jit(encoder.apply)(variables, x), live)
  assert live.shape == (5, 4, 4, 8)


def test_decoder_alone_restores_images_from_codes(trained):
  workdir, state = trained
  x = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
  # Both sides jitted (eager, each operation compiles alone).
  codes = jax.jit(lambda v, x: state.apply_fn(v, x, method="encode"))({"params": state.params}, x)
  live = jax.jit(lambda v, z: state.apply_fn(v, z, method="decode"))({"params": state.params},
                                                                     codes)
  decoder, variables = checkpoint.restore_decoder(workdir)
  restored = jax.jit(lambda v, z: jax.nn.sigmoid(decoder.apply(v, z)))(variables, codes)
  np.testing.assert_array_equal(restored, live)
  assert float(restored.min()) >= 0 and float(restored.max()) <= 1


def test_whole_autoencoder_and_full_state(trained):
  workdir, state = trained
  model, variables = checkpoint.restore_autoencoder(workdir)
  x = jax.random.uniform(jax.random.key(2), (3, 28, 28, 1))
  # Both sides jitted (eager, each operation compiles alone).
  np.testing.assert_array_equal(
      jax.jit(lambda v, x: model.apply(v, x, method="reconstruct"))(variables, x),
      jax.jit(lambda v, x: jax.nn.sigmoid(state.apply_fn(v, x)))({"params": state.params}, x))
  manager = checkpoint.make_manager(workdir)
  restored = checkpoint.restore_state(manager, state)
  assert int(restored.step) == int(state.step) == 3
  for a, b in zip(jax.tree.leaves(restored.opt_state), jax.tree.leaves(state.opt_state)):
    np.testing.assert_array_equal(a, b)
  manager.close()


def test_restore_from_a_workdir_without_a_run_or_checkpoint(tmp_path, trained):
  with pytest.raises(UserError, match="no config.json"):
    checkpoint.restore_encoder(str(tmp_path))
  empty = tmp_path / "empty"
  os.makedirs(empty)
  (empty / "config.json").write_text(open(os.path.join(trained[0], "config.json")).read())
  with pytest.raises(UserError, match="no checkpoint yet"):
    checkpoint.restore_decoder(str(empty))


def test_a_damaged_checkpoint_is_one_clear_error_for_the_restore_helpers(tmp_path, trained):
  import shutil  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "run")
  shutil.copytree(trained[0], workdir)
  item = os.path.join(workdir, "checkpoints", "3", "encoder")
  for root, _, files in os.walk(item):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(os.path.getsize(f.name) // 2)
  with pytest.raises(UserError, match="the encoder of checkpoint step 3 .* cannot be read "
                                      r"\(.*\): train the run again"):
    checkpoint.restore_encoder(workdir)
  checkpoint.restore_decoder(workdir)  # the other item of the step is still good


def test_failed_read_noise_goes_unreported_and_other_unraisables_are_reported(monkeypatch):
  import sys  # pylint: disable=import-outside-toplevel
  from types import SimpleNamespace  # pylint: disable=import-outside-toplevel
  seen = []
  monkeypatch.setattr(sys, "unraisablehook", seen.append)
  with checkpoint._failed_reads_quiet():  # pylint: disable=protected-access
    pass
  hook = sys.unraisablehook  # stays: some of the noise arrives after the restore returned

  async def read():
    pass

  coroutine = read()
  hook(SimpleNamespace(object=coroutine, exc_type=ValueError, exc_value=ValueError("read")))
  coroutine.close()
  # TensorStore's callback into the failed restore's closed event loop.
  hook(SimpleNamespace(object=None, exc_type=RuntimeError,
                       exc_value=RuntimeError("Event loop is closed")))
  other = SimpleNamespace(object=None, exc_type=RuntimeError, exc_value=RuntimeError("mine"))
  hook(other)
  assert seen == [other]
  with checkpoint._failed_reads_quiet():  # pylint: disable=protected-access
    pass
  assert sys.unraisablehook is hook  # installed once, not wrapped again


def test_a_damaged_step_gets_the_advice_that_works_for_it(tmp_path, trained):
  import shutil  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "run")
  shutil.copytree(trained[0], workdir)
  steps = os.path.join(workdir, "checkpoints")
  shutil.copytree(os.path.join(steps, "3"), os.path.join(steps, "1"))  # steps 1 and 3
  images = np.zeros((2, 28, 28, 1), np.uint8)
  assert compress.encode(workdir, images).run["step"] == 3  # the latest, by default
  codes = compress.encode(workdir, images, step=1)

  def damage(step, item):
    files = [os.path.join(r, n) for r, _, names in os.walk(os.path.join(steps, str(step), item))
             for n in names]
    with open(max(files, key=os.path.getsize), "r+b") as f:
      f.truncate(os.path.getsize(f.name) // 2)

  damage(1, "encoder")  # an older step: a resume never checks it, another step does
  with pytest.raises(UserError, match=r"the encoder of checkpoint step 1 .*: use another of "
                                      r"its steps \(\[3\]\)"):
    checkpoint.restore_encoder(workdir, 1)
  damage(3, "encoder")  # the newest: a resume sets it aside and trains it again
  with pytest.raises(UserError, match="the encoder of checkpoint step 3 .*: rerun its training "
                                      "command"):
    checkpoint.restore_encoder(workdir)
  damage(1, "decoder")  # codes decode only with the checkpoint that made them
  with pytest.raises(UserError, match="the decoder of checkpoint step 1 .*: the codes were made "
                                      "by that checkpoint and decode only with it: encode"):
    compress.decode(codes, workdir)


def test_tools_need_only_their_own_item_and_say_a_damaged_one_in_one_line(tmp_path, trained):
  """decode checked the codes' checkpoint through the metadata of every item, so a damaged
  optimizer state (or encoder) made intact codes undecodable; and the failed metadata
  reads printed a traceback after the error line."""
  import shutil  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress  # pylint: disable=import-outside-toplevel
  workdir = str(tmp_path / "run")
  shutil.copytree(trained[0], workdir)
  images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), np.uint8)
  codes = compress.encode(workdir, images)
  expected = compress.decode(codes, workdir)
  for item in ("state", "encoder"):
    for root, _, files in os.walk(os.path.join(workdir, "checkpoints", "3", item)):
      for name in files:
        with open(os.path.join(root, name), "r+b") as f:
          f.truncate(min(10, os.path.getsize(f.name)))
  np.testing.assert_array_equal(compress.decode(codes, workdir), expected)
  out = tmp_path / "c.aec"
  done = subprocess.run(
      [sys.executable, "-m", "ae_jax.compress", "encode", "--workdir", workdir, "--dataset",
       "fashion_mnist", "--out", str(out), "--max_images", "4"],
      capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: the encoder of checkpoint step 3"), \
      done.stderr
  assert not out.exists()


def test_failed_reads_coroutines_collected_at_the_end_give_no_warning():
  """A failed restore leaves orbax's other reads as coroutines in reference cycles; the
  gc.collect at the end of _failed_reads_quiet finalizes them, and Python warns 'coroutine
  ... was never awaited' for each (seen once as the suite's one warning). Those are not
  shown; other warnings are."""
  import gc  # pylint: disable=import-outside-toplevel
  import warnings  # pylint: disable=import-outside-toplevel

  async def read():
    pass

  def failing_read():
    raise OSError("a truncated file")

  gc.collect()
  with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    with checkpoint._failed_reads_quiet():  # pylint: disable=protected-access
      cycle = {"read": read()}
      cycle["self"] = cycle  # only the collector can free it
      del cycle
      assert checkpoint._try(failing_read)[0] is None  # pylint: disable=protected-access
      warnings.warn("mine", RuntimeWarning)
  assert [str(w.message) for w in seen] == ["mine"]


def test_a_restore_that_read_everything_runs_no_full_collection(monkeypatch):
  """The collection above is for failed reads only: it took ~0.3 s in a process that has
  loaded TensorFlow, and every restore (resume, every tool) paid it."""
  import gc  # pylint: disable=import-outside-toplevel
  collections = []
  monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)
  with checkpoint._failed_reads_quiet():  # pylint: disable=protected-access
    assert checkpoint._try(lambda: 1) == (1, None)  # pylint: disable=protected-access
  assert collections == []
  with checkpoint._failed_reads_quiet():  # pylint: disable=protected-access
    checkpoint._try(lambda: 1 / 0)  # pylint: disable=protected-access
  assert len(collections) == 1
