"""Exact resume after SIGKILL/SIGTERM, damaged checkpoints, determinism across runs."""
import gc
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from ae_jax.training import checkpoint, signals, train
from ae_jax.core.errors import UserError
from conftest import REPO, config_from_flags, read_tensorboard, scripted_stop

TIMING = ("seconds", "images_per_sec")


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]


def _shown_val_loss(workdir):
  """The (step, val_loss) points TensorBoard shows for the run."""
  return read_tensorboard(os.path.join(str(workdir), "tensorboard"))[0]["val_loss"]


def _params(workdir):
  return checkpoint.restore_autoencoder(workdir)[1]


def _assert_bit_identical(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def _launch_args(tiny_data, workdir):
  idx_dir, data_dir = tiny_data
  return [sys.executable, os.path.join(REPO, "launch.py"), "--config", "configs/denoise.py",
          "--workdir", workdir, f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
          "--config.batch_size=32", "--config.steps_per_epoch=6", "--config.num_epochs=3",
          "--config.eval_examples=64", "--config.checkpoint_every_steps=2",
          "--config.progress_bar=False"]


def _launch_config(tiny_data):
  """`_launch_args`' config, built from those flags as launch.py builds it."""
  return config_from_flags("configs/denoise.py", _launch_args(tiny_data, "unused"))


def _start(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=120):
  t0 = time.time()
  while not predicate():
    assert proc.poll() is None, "the run ended before the kill point: " + proc.stderr.read()
    assert time.time() - t0 < timeout
    time.sleep(0.001)


def _ckpt_dir(workdir):
  return os.path.join(workdir, "checkpoints")


def _writing(workdir):
  d = _ckpt_dir(workdir)
  return os.path.isdir(d) and any("tmp" in name for name in os.listdir(d))


def _steps(workdir):
  d = _ckpt_dir(workdir)
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def test_killed_and_terminated_runs_resume_bit_identical(tiny_data, tmp_path):
  # The unbroken run in this process (launch.py's config, the same compiled steps: the
  # processes below must end bit-identical to it); the broken one as a user runs it.
  reference = str(tmp_path / "reference")
  train.train_and_evaluate(_launch_config(tiny_data), reference)

  workdir = str(tmp_path / "killed")
  args = _launch_args(tiny_data, workdir)
  # 1. SIGKILL before the first checkpoint (imports, data, compile).
  proc = _start(args)
  _wait_for(lambda: os.path.exists(os.path.join(workdir, "config.json")), proc)
  proc.kill()
  proc.wait()
  # 2. SIGKILL while orbax is writing a checkpoint (its temporary folder exists).
  proc = _start(args)
  _wait_for(lambda: _writing(workdir) and _steps(workdir), proc)
  proc.kill()
  proc.wait()
  killed_at = _steps(workdir)
  # 3. SIGTERM mid-run: a checkpoint of the current step is saved, then a clean exit.
  proc = _start(args)
  _wait_for(lambda: max(_steps(workdir), default=0) > max(killed_at, default=0), proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert "interrupted: stopped by signal 15 at step" in err and "Traceback" not in err
  stopped_at = int(err.split("at step ")[1].split(";")[0])
  assert stopped_at in _steps(workdir)
  # 4. The same command again finishes the run.
  proc = _start(args)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  assert f"Resuming {workdir} from step {stopped_at}." in err

  _assert_bit_identical(_params(workdir), _params(reference))
  assert _metrics(workdir) == _metrics(reference)  # no duplicated or missing epochs
  assert _shown_val_loss(workdir) == _shown_val_loss(reference)  # each step once


def _train(config, workdir):
  return train.train_and_evaluate(config, workdir)


def test_same_seed_is_bit_identical_and_another_seed_differs(tiny_config, tmp_path):
  tiny_config.noise.scale = 0.1
  a = _train(tiny_config, str(tmp_path / "a"))
  b = _train(tiny_config, str(tmp_path / "b"))
  _assert_bit_identical(a.params, b.params)
  assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
  tiny_config.seed = 1
  c = _train(tiny_config, str(tmp_path / "c"))
  assert not np.array_equal(c.params["encoder"]["latent_vector"]["kernel"],
                            a.params["encoder"]["latent_vector"]["kernel"])


def test_mid_epoch_checkpoints_resume_bit_identical_in_process(tiny_config, tmp_path):
  tiny_config.checkpoint_every_steps, tiny_config.steps_per_call = 3, 2
  tiny_config.checkpoints_to_keep, tiny_config.noise.scale = 10, 0.1
  full = _train(tiny_config, str(tmp_path / "full"))
  workdir = str(tmp_path / "part")
  _train(tiny_config, workdir)
  assert _steps(workdir) == [3, 4, 6, 8]
  manager = checkpoint.make_manager(workdir)
  for step in (8, 6, 4):  # drop the newest checkpoints: resume from step 3, mid-epoch 1
    manager.delete(step)
  manager.close()
  resumed = _train(tiny_config, workdir)
  _assert_bit_identical(resumed.params, full.params)
  assert _metrics(workdir) == _metrics(tmp_path / "full")



@pytest.mark.parametrize("stop_step", [2, 4, 8])  # mid-epoch, an epoch's end, the run's end
def test_a_stop_request_resumes_with_every_epoch_logged_once(tiny_config, tmp_path,
                                                             monkeypatch, stop_step):
  tiny_config.steps_per_call = 2  # jit calls end at steps 2, 4 | 6, 8
  full = _train(tiny_config, str(tmp_path / "full"))
  workdir = str(tmp_path / "stopped")
  scripted_stop(monkeypatch, stop_step)
  if stop_step < 8:
    with pytest.raises(train.Interrupted) as stopped:
      _train(tiny_config, workdir)
    assert stopped.value.step == stop_step
    # Every epoch that ended before the stop was evaluated and logged.
    assert [r["epoch"] for r in _metrics(workdir)] == list(range(1, stop_step // 4 + 1))
    scripted_stop(monkeypatch, None)
  resumed = _train(tiny_config, workdir)  # a stop after the last step: the run is complete
  _assert_bit_identical(resumed.params, full.params)
  assert _metrics(workdir) == _metrics(tmp_path / "full")
  assert _shown_val_loss(workdir) == _shown_val_loss(tmp_path / "full")

def _damage(workdir, step, how, item="state"):
  state_dir = os.path.join(_ckpt_dir(workdir), str(step), item)
  files = [os.path.join(r, f) for r, _, fs in os.walk(state_dir) for f in fs]
  big = max(files, key=os.path.getsize)
  if how == "truncate":
    with open(big, "r+b") as f:
      f.truncate(os.path.getsize(big) // 2)
  else:
    for path in files:
      os.remove(path)


@pytest.mark.parametrize("how, item", [("truncate", "state"), ("delete", "state"),
                                       ("truncate", "decoder")])  # the tools read the decoder
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_step(tiny_config, tmp_path,
                                                                      how, item, capfd,
                                                                      monkeypatch):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 2
  _train(tiny_config, workdir)
  _damage(workdir, 8, how, item)
  tiny_config.num_epochs = 3
  unraisable = []  # what Python would print as 'Exception ignored in ...'
  monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.object))
  state = _train(tiny_config, workdir)
  gc.collect()
  # orbax's failed reads of the damaged step's other arrays stay quiet.
  assert not [o for o in unraisable if inspect.iscoroutine(o)]
  err = capfd.readouterr().err
  assert "checkpoint step 8 is damaged" in err and "Resuming" in err and "from step 4" in err
  # One warning line, not buried under the tracebacks of the reads left running.
  assert "Traceback" not in err and "Event loop is closed" not in err, err
  assert "See full TensorStore details" not in err
  assert int(state.step) == 12
  assert os.listdir(os.path.join(workdir, "damaged_checkpoints"))[0].startswith("8-")
  assert [r["epoch"] for r in _metrics(workdir)] == [1, 2, 3]


def test_no_readable_checkpoint_stops_with_a_clear_error(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs, tiny_config.checkpoints_to_keep = 1, 1
  _train(tiny_config, workdir)
  _damage(workdir, 4, "truncate")
  with pytest.raises(UserError, match="no checkpoint .* can be read.*--restart"):
    _train(tiny_config, workdir)
  assert _steps(workdir) == [4]  # nothing moved or deleted
  state = train.train_and_evaluate(tiny_config, workdir, restart=True)
  assert int(state.step) == 4
  assert any(".old-" in name for name in os.listdir(tmp_path))


def test_fewer_epochs_than_trained_are_refused_and_config_json_kept(tiny_config, tmp_path):
  # The run has trained 2 epochs of 4 steps; num_epochs=1 cannot undo them, and writing it
  # into config.json (it is a field a resume may change) would misstate the run.
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 2
  _train(tiny_config, workdir)
  config_json = open(os.path.join(workdir, "config.json")).read()
  tiny_config.num_epochs = 1
  with pytest.raises(UserError, match="has trained to step 8, past the 1 epoch\\(s\\) of "
                                      "--config.num_epochs=1 \\(4 steps each\\): set "
                                      "--config.num_epochs=2 or more, or --restart"):
    _train(tiny_config, workdir)
  assert open(os.path.join(workdir, "config.json")).read() == config_json
  assert [r["epoch"] for r in _metrics(workdir)] == [1, 2]
  tiny_config.num_epochs = 2  # the same run again: finished, nothing to do
  assert int(_train(tiny_config, workdir).step) == 8


def test_resumable_changes_are_logged_and_a_finished_run_keeps_its_learning_rate(tiny_config,
                                                                                 tmp_path, capfd):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 1
  _train(tiny_config, workdir)
  config_json = open(os.path.join(workdir, "config.json")).read()
  # Nothing left to train: a new learning rate would only misstate the run.
  tiny_config.learning_rate = 0.5
  _train(tiny_config, workdir)
  assert open(os.path.join(workdir, "config.json")).read() == config_json
  assert "nothing left to train; learning_rate left as trained" in capfd.readouterr().err
  assert not os.path.exists(os.path.join(workdir, "config_changes.jsonl"))
  # ... but where the data is, or how many pictures, is taken even then.
  tiny_config.num_images = 3
  _train(tiny_config, workdir)
  record = json.load(open(os.path.join(workdir, "config.json")))
  assert (record["num_images"], record["learning_rate"]) == (3, 1e-3)
  # Training on: config.json takes the new values, the log says from which step.
  tiny_config.num_epochs, tiny_config.learning_rate, tiny_config.steps_per_call = 2, 2e-3, 2
  _train(tiny_config, workdir)
  record = json.load(open(os.path.join(workdir, "config.json")))
  assert (record["num_epochs"], record["learning_rate"], record["num_images"]) == (2, 2e-3, 3)
  entries = [json.loads(l) for l in open(os.path.join(workdir, "config_changes.jsonl"))]
  assert [(e["from_step"], e["changes"]) for e in entries] == [
      (4, {"num_images": [4, 3]}),
      (4, {"learning_rate": [1e-3, 2e-3], "num_epochs": [1, 2], "steps_per_call": [0, 2]})]


def test_the_pipeline_may_be_named_on_resume_where_it_is_the_same(tiny_config, tmp_path):
  """A run whose 'auto' chose the device pipeline resumes with input_pipeline='device' (or
  another device_data_mb that still fits): the same batches, so no longer refused. A
  choice that changes the pipeline is still refused; config.json keeps the run's fields,
  and the resumed run equals one trained straight through."""
  workdir, straight = str(tmp_path / "run"), str(tmp_path / "straight")
  tiny_config.num_epochs = 1
  _train(tiny_config, workdir)  # 'auto': 512 tiny images fit, so the device pipeline
  record = json.load(open(os.path.join(workdir, "config.json")))
  tiny_config.input_pipeline = "stream"
  with pytest.raises(UserError, match="another config \\(differs in input_pipeline\\)"):
    _train(tiny_config, workdir)
  tiny_config.input_pipeline, tiny_config.device_data_mb = "auto", 1  # 0.38 MB: still fits
  tiny_config.num_epochs = 2
  _train(tiny_config, workdir)
  tiny_config.input_pipeline, tiny_config.device_data_mb = "device", 256
  tiny_config.num_epochs = 3
  state = _train(tiny_config, workdir)
  after = json.load(open(os.path.join(workdir, "config.json")))
  assert (after["input_pipeline"], after["device_data_mb"]) == ("auto", 2048)  # the run's
  assert {k: v for k, v in after.items() if k != "num_epochs"} == {
      k: v for k, v in record.items() if k != "num_epochs"}
  tiny_config.input_pipeline = "auto"
  again = _train(tiny_config, straight)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(again.params)):
    np.testing.assert_array_equal(a, b)


def test_a_resume_that_falls_back_logs_the_step_it_resumed_from(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 2
  _train(tiny_config, workdir)
  _damage(workdir, 8, "truncate")  # the finished run's last step: it resumes from step 4
  tiny_config.learning_rate = 2e-3
  _train(tiny_config, workdir)  # so epoch 2 trains again, at the new rate
  assert json.load(open(os.path.join(workdir, "config.json")))["learning_rate"] == 2e-3
  (entry,) = [json.loads(l) for l in open(os.path.join(workdir, "config_changes.jsonl"))]
  assert entry["from_step"] == 4 and entry["changes"] == {"learning_rate": [1e-3, 2e-3]}


def test_restart_moves_only_runs_aside_and_never_over_another(tmp_path):
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  run = tmp_path / "run"
  assert workdir_lib.move_aside(str(run)) is None  # nothing there
  run.mkdir()
  assert workdir_lib.move_aside(str(run)) is None and run.is_dir()  # empty: not a run
  for foreign in ('{"vocab_size": 5}', "[1, 2]"):  # another program's config.json
    (run / "config.json").write_text(foreign)
    assert workdir_lib.move_aside(str(run)) is None and run.is_dir()
  (run / "config.json").unlink()
  moved = []
  for i in range(3):  # three restarts within (most likely) one second: three names
    run.mkdir(exist_ok=True)
    (run / "config.json").write_text(json.dumps({"n": i, "encoder": {"name": "dense", "latent_dim": 8},
                                                   "decoder": {"name": "dense"},
                                                 "image_shape": [28, 28, 1]}))
    moved.append(workdir_lib.move_aside(str(run)))
  assert len(set(moved)) == 3 and not run.exists()
  assert [json.loads(open(os.path.join(m, "config.json")).read())["n"] for m in moved] == [0, 1, 2]


def test_a_metrics_line_cut_short_is_left_out_and_a_broken_one_refused(tmp_path, capfd):
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  log = workdir_lib.MetricsLog(str(tmp_path), enabled=False)
  with open(log.path, "w") as f:
    f.write('{"epoch": 1, "step": 4}\n{"epoch": 2, "st')  # killed while appending
  assert log.rows() == [{"epoch": 1, "step": 4}]
  assert "last line" in capfd.readouterr().err
  with open(log.path, "w") as f:
    f.write('{"epoch": 1, "st\n{"epoch": 2, "step": 8}\n')
  with pytest.raises(UserError, match="line 1 of .* is not JSON"):
    log.rows()
  for other in ('{"note": "mine"}', "[1, 2]", '{"step": "4"}'):  # JSON, but not a row
    with open(log.path, "w") as f:
      f.write('{"epoch": 1, "step": 4}\n' + other + "\n")
    with pytest.raises(UserError, match="line 2 of .* is not a metrics row"):
      log.rows()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_become_a_stop_request_and_handlers_are_restored(signum):
  before = signal.getsignal(signum)
  threads = threading.active_count()
  with train._StopRequests() as stop:  # pylint: disable=protected-access
    os.kill(os.getpid(), signum)  # Ctrl-C is SIGINT: no KeyboardInterrupt mid-step
    time.sleep(0.01)
    assert stop.signum == signum  # one signal: a stop request, the process lives on
  assert signal.getsignal(signum) is before
  assert threading.active_count() == threads  # the watcher of second signals has ended
  assert signal.set_wakeup_fd(-1) == -1  # and the wakeup fd is Python's default again


# Runs launch.py with every train call followed by a jitted call that never returns (its
# host callback sleeps an hour): the main thread blocks inside XLA, where Python runs no
# signal handler, as in the hang of issue #28 (0% CPU in `int(state.step)`).
_STUCK_LAUNCH = """
import runpy, signal, sys, time
import jax
from ae_jax.training import steps

# As on a terminal, even where this test's runner ignores SIGINT (a shell's background job).
signal.signal(signal.SIGINT, signal.default_int_handler)
real = steps.device_train_steps

@jax.jit
def never_done(x):
  return jax.pure_callback(lambda v: (time.sleep(3600), v)[1],
                           jax.ShapeDtypeStruct(x.shape, x.dtype), x)

def stuck(state, *args, **kwargs):
  state, out = real(state, *args, **kwargs)
  print("stuck in a jitted call", file=sys.stderr, flush=True)
  return state, {**out, "loss": never_done(out["loss"])}

steps.device_train_steps = stuck
sys.argv = ["launch.py", *sys.argv[1:]]
runpy.run_path("launch.py", run_name="__main__")
"""


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM),
                                           (signal.SIGINT, signal.SIGINT)],
                         ids=["SIGTERM twice", "Ctrl-C twice"])
def test_a_second_signal_ends_a_run_stuck_in_a_jitted_call_at_once(tiny_data, tmp_path, first,
                                                                    second):
  args = _launch_args(tiny_data, str(tmp_path / "run"))[2:]  # after python launch.py
  proc = _start([sys.executable, "-c", _STUCK_LAUNCH, *args])
  try:
    err = ""
    while "stuck in a jitted call" not in err:
      line = proc.stderr.readline()
      assert line, "the run ended before it got stuck: " + err
      err += line
    time.sleep(1.0)
    proc.send_signal(first)  # asks for a clean stop, which a stuck call never reaches
    time.sleep(1.0)
    assert proc.poll() is None, "the first signal must not end the run: " + proc.stderr.read()
    t0 = time.monotonic()
    proc.send_signal(second)
    rest = proc.communicate(timeout=30)[1]
  finally:
    if proc.poll() is None:
      proc.kill()
  assert time.monotonic() - t0 < 10
  assert proc.returncode == 128 + second
  # The one line (the host may have dispatched one more call before it blocked).
  lines = [l for l in rest.strip().splitlines() if l != "stuck in a jitted call"]
  assert lines == [signals.AT_ONCE.format(name=second.name)], rest
  assert "Traceback" not in err + rest


def test_a_signal_the_parent_ignores_stays_ignored():
  # A shell starts background jobs with SIGINT ignored: the run must not take it back.
  before = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    with train._StopRequests() as stop:  # pylint: disable=protected-access
      assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.01)
      assert stop.signum is None
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, before)


def test_a_second_run_on_a_workdir_in_use_is_refused_and_touches_nothing(tiny_config,
                                                                         tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 1
  _train(tiny_config, workdir)
  before = {p: os.path.getmtime(os.path.join(r, p)) for r, _, fs in os.walk(workdir) for p in fs}
  # Another process holds the run's lock, as a run training there does.
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from ae_jax import workdir; "
       f"lock = workdir.RunLock(); lock.acquire({workdir!r}); print('locked', flush=True); "
       "time.sleep(120)"],
      cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    tiny_config.num_epochs = 2
    with pytest.raises(UserError, match=f"--workdir {workdir} is in use by another training "
                                        f"run \\(pid {holder.pid}\\): wait for it to end"):
      _train(tiny_config, workdir)
    with pytest.raises(UserError, match="in use"):  # --restart would move a live run aside
      train.train_and_evaluate(tiny_config, workdir, restart=True)
    after = {p: os.path.getmtime(os.path.join(r, p)) for r, _, fs in os.walk(workdir) for p in fs}
    assert {p: t for p, t in after.items() if p != ".lock"} == {
        p: t for p, t in before.items() if p != ".lock"}
  finally:
    holder.kill()
    holder.wait()
  # The lock ends with its process: the run resumes.
  assert int(_train(tiny_config, workdir).step) == 8


def test_a_resume_from_before_the_last_row_shows_each_step_once_in_tensorboard(tiny_config,
                                                                                 tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.num_epochs = 2
  _train(tiny_config, workdir)
  # Killed after epoch 2's row and events were written, before its checkpoint was committed.
  os.rename(os.path.join(_ckpt_dir(workdir), "8"),
            os.path.join(_ckpt_dir(workdir), "8.orbax-checkpoint-tmp-1234"))
  tiny_config.num_epochs = 3
  _train(tiny_config, workdir)
  rows = _metrics(workdir)
  assert [r["step"] for r in rows] == [4, 8, 12]
  # Step 8 once, the resumed epoch's: the first run's event stays in its file, hidden.
  assert _shown_val_loss(workdir) == [(r["step"], pytest.approx(r["val_loss"], rel=1e-6))
                                      for r in rows]
  assert len(os.listdir(os.path.join(workdir, "tensorboard"))) == 2


def test_a_filesystem_without_flock_runs_unlocked_with_a_warning(tmp_path, monkeypatch, capfd):
  import errno  # pylint: disable=import-outside-toplevel
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel

  def no_locks(*args):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(workdir_lib.fcntl, "flock", no_locks)
  lock = workdir_lib.RunLock()
  lock.acquire(str(tmp_path / "run"))  # not 'in use': nothing holds it
  assert "cannot lock" in capfd.readouterr().err
  lock.release()


def test_a_resume_hides_the_repeated_steps_in_tensorboard_at_once(tmp_path):
  """A resume from step 4 hides the old step 8 before it writes step 8 again (TensorBoard's
  purge: the new event file starts with a SessionLog.START at step 5); a resume from the
  last row hides nothing."""
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  log = workdir_lib.MetricsLog(str(tmp_path))
  assert log.truncate_after(0) == []
  for step, loss in ((4, 0.5), (8, 0.4)):
    log.write({"epoch": step // 4, "step": step, "val_loss": loss},
              np.full((84, 28, 1), step / 10, np.float32))
  log.close()
  log = workdir_lib.MetricsLog(str(tmp_path))
  assert [r["step"] for r in log.truncate_after(8)] == [4, 8]
  log.close()
  assert _shown_val_loss(tmp_path) == [(4, 0.5), (8, pytest.approx(0.4))]
  log = workdir_lib.MetricsLog(str(tmp_path))
  assert [r["step"] for r in log.truncate_after(4)] == [4]  # no new event yet
  t0 = time.time()  # the START is written when the resumed run opens its event file
  while _shown_val_loss(tmp_path) != [(4, 0.5)]:
    assert time.time() - t0 < 5
    time.sleep(0.1)
  log.write({"epoch": 2, "step": 8, "val_loss": 0.3}, np.full((84, 28, 1), 0.3, np.float32))
  log.close()
  scalars, images = read_tensorboard(str(tmp_path / "tensorboard"))
  assert scalars["val_loss"] == [(4, 0.5), (8, pytest.approx(0.3))]
  assert sorted(images) == [4, 8] and images[8].max() == 77  # 0.3 * 255, rounded


def test_event_files_of_one_process_never_overwrite_each_other(tmp_path):
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  logs = [workdir_lib.MetricsLog(str(tmp_path)) for _ in range(2)]  # within one second
  logs[0].write({"epoch": 1, "step": 4, "val_loss": 0.5})
  logs[1].write({"epoch": 2, "step": 8, "val_loss": 0.4})
  for log in logs:
    log.close()
  assert len(os.listdir(tmp_path / "tensorboard")) == 2
  assert _shown_val_loss(tmp_path) == [(4, 0.5), (8, pytest.approx(0.4))]


def test_event_files_are_written_without_tensorflow_or_torch(tmp_path):
  """tensorboardX imports torch where it is installed: MetricsLog keeps it out (a stand-in
  torch here fails on import), as it keeps out TensorFlow."""
  (tmp_path / "torch").mkdir()
  (tmp_path / "run").mkdir()
  (tmp_path / "torch" / "__init__.py").write_text("raise SystemExit('torch was imported')\n")
  code = f"""
import sys
sys.modules["tensorflow"] = None  # any import fails
import numpy as np
from ae_jax.training import workdir
log = workdir.MetricsLog({str(tmp_path / "run")!r})
log.truncate_after(0)
log.write({{"epoch": 1, "step": 4, "val_loss": 0.5}}, np.zeros((84, 28, 1)))
log.close()
print(sorted(m for m in sys.modules if m.startswith(("torch", "tensorflow"))))
"""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]))
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                        text=True)
  assert done.returncode == 0, done.stderr[-1500:]
  assert done.stdout.strip() == "['tensorflow']"  # the blocked entry alone
  assert _shown_val_loss(tmp_path / "run") == [(4, 0.5)]
