"""A full disk is one line: every write a command makes, refused by the disk (full, over
quota, read-only, failing), ends the command with `error: cannot write WHAT to WHERE:
<reason>: <fix>`, exit status 2, no traceback, and the last good state resumes.

Each case injects ENOSPC (or EIO, EROFS) into one write (as the OSError Python raises, or
as the message orbax/TensorStore or tfds wrap it in); the `test_a_real_full_disk_...`
tests fill a real tmpfs (a checkpoint, tfds' preparation, the image cache, the compilation
cache) where this process may mount one (root), and skip elsewhere. The rows of docs/errors.md's "A full disk" section are
these cases; regenerate them with
  AE_JAX_WRITE_ERRORS_DOC=1 python -m pytest tests/test_full_disk.py
"""
import builtins
import errno
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import REPO  # pylint: disable=wrong-import-position
import test_errors  # pylint: disable=wrong-import-position
from test_errors import DOC, _args, run_cli, trained_run  # noqa: F401 pylint: disable=wrong-import-position,unused-import

# pylint: disable=wrong-import-position
from ae_jax.data import pipeline as data
from ae_jax.compression import compress, compress_cli, out_of_domain, rate_distortion, sweep
from ae_jax.core import errors, files, plots
from ae_jax.data import idx_builder
from ae_jax.evaluation import latent, sample
from ae_jax.training import checkpoint
# pylint: enable=wrong-import-position
from ae_jax.training import workdir as workdir_lib  # pylint: disable=wrong-import-position

FULL = os.strerror(errno.ENOSPC)


def _enospc(path="", number=errno.ENOSPC) -> OSError:
  return OSError(number, os.strerror(number), path)


def _raise_enospc(*args, **kwargs):
  raise _enospc()


def _refusing(number: int):
  """A function that raises the OSError of `number` (ENOSPC, EIO, EROFS...)."""
  def refuse(*args, **kwargs):
    raise _enospc(number=number)
  return refuse


def _tfds_enospc(*args, **kwargs):
  """What tfds raises when its writer cannot finish a split on a full disk: TensorFlow's
  ResourceExhaustedError, re-raised as a RuntimeError (the OSError is gone)."""
  raise RuntimeError('ResourceExhaustedError: Failed to finalize writing of split "train": '
                     "/x/tfds/idx_images/fashion_mnist/incomplete.ML4XTS_1.0.0/idx_images-"
                     f"train.tfrecord-00000-of-00001; {FULL}")


def _orbax_enospc(*args, **kwargs):
  """What orbax raises for a full disk: TensorStore's error in a ValueError."""
  raise ValueError('RESOURCE_EXHAUSTED: Error writing "step/0" in OCDBT database at local '
                   'file "/x/checkpoints/4.orbax-checkpoint-tmp/state/": Failed to write '
                   f"871943 bytes to file 11: {FULL} [os_error_code='28']")


def _full_open(name: str, modes: str = "wax", number: int = errno.ENOSPC):
  """An `open` that refuses to write files whose path contains `name` (with `number`)."""
  def fake(file, mode="r", *args, **kwargs):
    if name in os.fspath(file) and any(m in mode for m in modes):
      raise _enospc(os.fspath(file), number)
    return builtins.open(file, mode, *args, **kwargs)
  return fake


def _one_error_line(err: str) -> str:
  lines = [l for l in err.strip().splitlines() if l.startswith("error: ")]
  assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
  return lines[0]


# ------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def one_epoch_run(trained_run):
  """A tiny run trained for one epoch (2 steps), to copy and extend to two."""
  return trained_run


# (what is being written, how the write is refused: (module, attribute, replacement),
# whether the case starts from the one-epoch run and trains a second epoch, part of the line)
TRAIN_CASES = [
    ("config.json", (workdir_lib, "open", _full_open("config.json")), False,
     "cannot write config.json to $RUN"),
    ("config_changes.jsonl (a resume's new num_epochs)",
     (workdir_lib, "open", _full_open("config_changes.jsonl")), True,
     "cannot write config_changes.jsonl to $RUN"),
    ("metrics.jsonl", (workdir_lib, "open", _full_open("metrics.jsonl", "a")), True,
     "cannot write metrics.jsonl to $RUN"),
    ("TensorBoard events", (workdir_lib.EventFile, "flush", _raise_enospc), True,
     "cannot write the TensorBoard events to $RUN/tensorboard"),
    ("the picture grid", (plots, "save_grid", _raise_enospc), True,
     "cannot write images/reconstructions.png to $RUN"),
    ("the loss curve", (plots, "save_loss_curve", _raise_enospc), True,
     "cannot write images/loss.png to $RUN"),
    ("a checkpoint (orbax's error)", (checkpoint, "save", _orbax_enospc), True,
     "cannot write a checkpoint to $RUN/checkpoints"),
    ("the prepared dataset", (idx_builder.IdxImages, "download_and_prepare", _raise_enospc),
     False, "cannot write the prepared fashion_mnist dataset to $TMP/fresh_tfds"),
    ("the prepared dataset (tfds' RuntimeError: 'Failed to finalize writing of split')",
     (idx_builder.IdxImages, "download_and_prepare", _tfds_enospc), False,
     "cannot write the prepared fashion_mnist dataset to $TMP/fresh_tfds"),
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_a_full_disk_while_training_is_one_line_and_the_run_resumes(case, tiny_data,
                                                                     one_epoch_run, tmp_path,
                                                                     monkeypatch):
  what, (module, name, refuse), resumes, expected = case
  workdir = str(tmp_path / "run")
  extra = []
  if resumes:
    shutil.copytree(one_epoch_run, workdir)
    extra = ["--config.num_epochs=2"]
  if "dataset" in what:
    extra = [f"--config.data_dir={tmp_path}/fresh_tfds"]
  monkeypatch.setattr(module, name, refuse, raising=False)
  code, err = run_cli(_args(extra, tiny_data, workdir))
  line = _one_error_line(err)
  assert code == 2, err[-2000:]
  expected = expected.replace("$RUN", workdir).replace("$TMP", str(tmp_path))
  assert expected + f": {FULL}: free space or choose another --" in line, line
  _check_documented(what, line.replace(str(tmp_path), "$TMP"))

  monkeypatch.undo()  # space again: the same command resumes from the last checkpoint
  code, err = run_cli(_args(extra, tiny_data, workdir))
  assert code == 0, err[-2000:]
  assert ("Resuming" in err) == resumes, err[-2000:]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(l)["step"] for l in f]
  assert steps == ([2, 4] if resumes else [2])
  assert not glob.glob(os.path.join(workdir, "**", "*.tmp"), recursive=True)


def test_a_full_data_dir_goes_without_the_image_cache_with_a_warning(tiny_data, tmp_path,
                                                                      monkeypatch):
  """The decoded-image cache only saves time: a data_dir too full for it is a warning, and
  the run goes on (a read-only data_dir goes without it silently, as before)."""
  data_dir = str(tmp_path / "tfds")
  shutil.copytree(tiny_data[1], data_dir)
  for cache in glob.glob(os.path.join(data_dir, "**", "*.images.npy"), recursive=True):
    os.remove(cache)
  # Its record names the original (there once a run has used the tiny data_dir).
  shutil.rmtree(os.path.join(data_dir, "ae_jax_prepared"), ignore_errors=True)
  monkeypatch.setattr(data, "open", _full_open(".images."), raising=False)
  code, err = run_cli(_args([f"--config.data_dir={data_dir}"], tiny_data,
                            str(tmp_path / "run")))
  assert code == 0, err[-2000:]
  warnings = [l for l in err.splitlines() if l.startswith("warning: cannot write")]
  assert warnings and f"{FULL}: going on without it" in warnings[0], err[-2000:]
  assert not glob.glob(os.path.join(data_dir, "**", "*.npy*"), recursive=True)


def _can_mount_tmpfs(folder: str) -> bool:
  os.makedirs(folder, exist_ok=True)
  done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", folder],
                        capture_output=True, check=False)
  return done.returncode == 0


def test_a_real_full_disk_stops_at_a_checkpoint_in_one_line_and_resumes(tiny_data, tmp_path):
  """launch.py on a 3 MB tmpfs: two tiny dense checkpoints fit, the third does not (it died
  with a 120-line orbax traceback, exit 1). After the disk is enlarged, the same command
  resumes from the last checkpoint and finishes."""
  disk = str(tmp_path / "disk")
  if not _can_mount_tmpfs(disk):
    pytest.skip("cannot mount a tmpfs here (needs root): the injected cases cover it")
  try:
    workdir = os.path.join(disk, "run")
    argv = [sys.executable, "launch.py", *_args(["--config.num_epochs=3"], tiny_data, workdir)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    others = [l for l in done.stderr.splitlines() if not l.startswith("epoch ")]
    assert len(others) == 1, done.stderr[-3000:]
    assert others[0].endswith(f"{FULL}: free space or choose another --workdir"), others[0]
    kept = workdir_lib.checkpoint_steps(workdir)
    assert kept, "the disk filled before the first checkpoint: use a larger tmpfs"
    subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"from step {kept[-1]}." in done.stderr
    assert workdir_lib.checkpoint_steps(workdir)[-1] == 6
  finally:
    subprocess.run(["umount", disk], check=False)


def _mounted_tmpfs(folder: str, size: str):
  """A context: `folder` as a tmpfs of `size` (e.g. '60k'), unmounted after; skips the test
  where this process may not mount one (not root)."""
  import contextlib  # pylint: disable=import-outside-toplevel

  @contextlib.contextmanager
  def mounted():
    os.makedirs(folder, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                          capture_output=True, check=False)
    if done.returncode:
      pytest.skip("cannot mount a tmpfs here (needs root): the injected cases cover it")
    try:
      yield folder
    finally:
      subprocess.run(["umount", folder], check=False)
  return mounted()


def _leftovers(root) -> list[str]:
  """Files and folders under `root` that a write in progress names (hidden ones too)."""
  return [os.path.join(r, n) for r, dirs, names in os.walk(root) for n in dirs + names
          if ".partial-" in n or "incomplete." in n or n.endswith(".tmp")]


def test_a_real_full_disk_while_tfds_prepares_the_data_is_one_line(tiny_data, trained_run,
                                                                   tmp_path, capsys):
  """--config.data_dir, TFDS_DATA_DIR and compress encode --data_dir on a 60 kB tmpfs:
  tfds' writer cannot finish the train split and tfds raised RuntimeError
  ('ResourceExhaustedError: Failed to finalize writing of split "train": ... No space
  left on device'), a 65-line traceback. Now one line, exit 2, nothing half-prepared
  left, and each command completes once the disk is larger."""
  idx_dir, _ = tiny_data
  with _mounted_tmpfs(str(tmp_path / "disk"), "60k") as disk:
    launch_args = _args([f"--config.data_dir={disk}/tfds"], tiny_data, str(tmp_path / "run"))
    code, err = run_cli(launch_args)
    line = _one_error_line(err)
    assert code == 2 and line == (
        f"error: cannot write the prepared fashion_mnist dataset to {disk}/tfds: {FULL}: "
        "free space or choose another --config.data_dir"), err[-3000:]
    _check_documented("the prepared dataset, on a real 60 kB tmpfs (--config.data_dir)",
                      line.replace(str(tmp_path), "$TMP"))

    # TFDS_DATA_DIR is read when tfds is imported: a fresh process.
    env_args = [a for a in launch_args if not a.startswith("--config.data_dir")]
    env = {**os.environ, "TFDS_DATA_DIR": f"{disk}/env_tfds"}
    launch = [sys.executable, "launch.py", *env_args]
    done = subprocess.run(launch, cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    line = _one_error_line(done.stderr)
    assert done.returncode == 2 and line.startswith(
        f"error: cannot write the prepared fashion_mnist dataset to {disk}/env_tfds: {FULL}"), \
        done.stderr[-3000:]

    encode = ["encode", "--workdir", trained_run, "--dataset", "fashion_mnist", "--max_images",
              "4", "--data_dir", f"{disk}/tools_tfds", "--idx_dir", idx_dir,
              "--out", str(tmp_path / "codes.aec")]
    capsys.readouterr()
    assert compress_cli.main(encode) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (f"error: cannot write the prepared fashion_mnist dataset to "
                    f"{disk}/tools_tfds: {FULL}: free space or choose another --data_dir"), line
    _check_documented("the prepared dataset, on a real 60 kB tmpfs (compress encode --data_dir)",
                      line.replace(str(tmp_path), "$TMP"))
    assert not _leftovers(disk) and not os.path.exists(tmp_path / "codes.aec")

    subprocess.run(["mount", "-o", "remount,size=4m", disk], check=True)
    code, err = run_cli(launch_args)
    assert code == 0, err[-3000:]
    done = subprocess.run(launch[:-1] + [f"--workdir={tmp_path}/env_run"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert compress_cli.main(encode) == 0
    assert not _leftovers(disk)


def test_a_real_full_disk_leaves_out_the_image_cache_with_a_warning(tmp_path, capsys):
  """The cache of a decoded split on a real full disk: numpy's `tofile` said
  '401408 requested and 0 written' without an errno, so it went without the warning."""
  with _mounted_tmpfs(str(tmp_path / "disk"), "64k") as disk:
    data.save_cache(os.path.join(disk, "train.images.npy"), np.zeros((512, 28, 28, 1), np.uint8))
    err = capsys.readouterr().err
    assert err == (f"warning: cannot write train.images.npy to {disk}: {FULL}: going on "
                   "without it (free space there to have it)\n"), err
    assert not os.listdir(disk)


def test_a_real_full_disk_under_the_compilation_cache_leaves_no_cut_entry(tiny_data, tmp_path):
  """JAX writes its cache entries in place and never rewrites one: a full disk left cut
  entries that every later run warned about (two lines each) and compiled anew. Now a
  one-line warning, no cut entry, and the next run reads the cache without a warning."""
  with _mounted_tmpfs(str(tmp_path / "cache"), "40k") as cache:
    argv = [sys.executable, "launch.py", *_args([], tiny_data, str(tmp_path / "run")),
            f"--compilation_cache_dir={cache}"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [l for l in done.stderr.splitlines() if "cache" in l]
    assert warnings == [f"warning: cannot write the compilation cache to {cache}: {FULL}: "
                        "going on without it (free space there, or --compilation_cache_dir= "
                        "turns it off)"], done.stderr[-3000:]
    subprocess.run(["mount", "-o", "remount,size=16m", cache], check=True)
    argv[-2] = f"--workdir={tmp_path}/run2"
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Error reading" not in done.stderr, done.stderr[-3000:]
    assert "cache" not in done.stderr


# ---------------------------------------------------------------------------- tools

@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, tiny_data):
  """A tiny VAE run (2 steps), for `sample`."""
  workdir = str(tmp_path_factory.mktemp("vae") / "run")
  code, err = run_cli(_args(["--config", "configs/vae.py"], tiny_data, workdir))
  assert code == 0, err[-2000:]
  return workdir


def _tool_cases(run, vae, tmp, number=errno.ENOSPC):
  """{name: (the tool's main, its arguments, the refused write, the outputs (under tmp),
  the start of the line)} for each tool's outputs, on the trained tiny `run` (`vae`: a
  VAE's, for sample), the write refused with `number`."""
  out = str(tmp / "out")
  full = lambda *args: _full_open(*args, number=number)  # pylint: disable=unnecessary-lambda-assignment
  return {
      "compress encode": (
          compress_cli.main, ["encode", "--workdir", run, "--dataset", "fashion_mnist",
                              "--max_images", "4", "--out", f"{out}.aec"],
          (files, "open", full(".aec")), ["out.aec"], f"cannot write out.aec to {tmp}"),
      "compress decode": (
          compress_cli.main, ["decode", "--workdir", run, "--codes", str(tmp / "ok.aec"),
                              "--out", out],
          (files.Image.Image, "save", _refusing(number)), ["out"],
          f"cannot write the decoded images to {out}"),
      "rate_distortion": (
          rate_distortion.main, ["--workdir", run, "--out", out, "--max_images", "8",
                                 "--jpeg_qualities", "50", "--codecs", "png,jpeg"],
          (rate_distortion, "open", full("rd.")), ["out"],
          f"cannot write rd.md, rd.csv, rd.json, rd_bd.md, rd_bd.json, rd.png to {out}"),
      "latent": (
          latent.main, ["--workdir", run, "--out", out, "--max_images", "16"],
          (latent, "save_scatter", _refusing(number)), ["out"],
          f"cannot write latent_pca.png and interpolation.png to {out}"),
      "out_of_domain": (
          out_of_domain.main, ["--workdir", run, "--out", out, "--num_digits", "8",
                               "--max_images", "8", "--quants", "uint8"],
          (plots, "save_grid", _refusing(number)), ["out"],
          f"cannot write ood.md, ood.csv, ood.json, ood.png to {out}"),
      "sample": (
          sample.main, ["--workdir", vae, "--out", f"{out}.png", "--num", "4"],
          (files.Image.Image, "save", _refusing(number)), ["out.png"],
          f"cannot write out.png to {tmp}"),
  }


# What each tool writes, as docs/errors.md names it.
TOOL_OUTPUTS = {"compress encode": "the codes file", "compress decode": "the PNGs",
                "rate_distortion": "its report", "latent": "its pictures",
                "out_of_domain": "its report", "sample": "the PNG"}
TOOL_IDS = list(TOOL_OUTPUTS)
# Each tool under a full disk (its row in docs/errors.md), and a read-only or failing one.
TOOL_FAULTS = [(t, errno.ENOSPC) for t in TOOL_IDS] + [
    ("rate_distortion", errno.EIO), ("rate_distortion", errno.EROFS), ("sample", errno.EIO),
    ("compress encode", errno.EROFS), ("compress decode", errno.EIO)]


@pytest.mark.parametrize("tool,number", TOOL_FAULTS,
                         ids=[f"{t}-{errno.errorcode[n]}" for t, n in TOOL_FAULTS])
def test_a_refused_write_in_a_tool_is_one_line_and_the_rerun_completes(
    tool, number, one_epoch_run, vae_run, tmp_path, monkeypatch, capsys):
  """One line, exit 2; no output, whole or half, and nothing being written left behind;
  once the disk takes it, the same command completes."""
  if tool == "compress decode":  # decode needs codes
    assert compress_cli.main(["encode", "--workdir", one_epoch_run, "--dataset", "fashion_mnist",
                              "--max_images", "4", "--out", str(tmp_path / "ok.aec")]) == 0
  main, argv, (module, name, refuse), outputs, expected = _tool_cases(
      one_epoch_run, vae_run, tmp_path, number)[tool]
  capsys.readouterr()
  monkeypatch.setattr(module, name, refuse, raising=False)
  assert main(argv) == 2
  line = _one_error_line(capsys.readouterr().err)
  fix = errors.DISK_FIXES[number].format(flag="--out")
  assert line == f"error: {expected}: {os.strerror(number)}: {fix}", line
  if number == errno.ENOSPC:
    _check_documented(f"{tool}: {TOOL_OUTPUTS[tool]}", line.replace(str(tmp_path), "$TMP"))
  assert not any(os.path.exists(tmp_path / o) for o in outputs)
  assert not _leftovers(tmp_path)

  monkeypatch.undo()  # the disk takes it again: the same command completes
  assert main(argv) == 0, capsys.readouterr().err[-2000:]
  assert all(os.path.exists(tmp_path / o) for o in outputs) and not _leftovers(tmp_path)


def test_a_full_disk_while_the_sweep_writes_its_tables_and_the_rerun(tiny_data, tmp_path,
                                                                    monkeypatch, capsys):
  idx_dir, data_dir = tiny_data
  out = str(tmp_path / "sweep")
  argv = ["--out", out, "--ks", "2", "--epochs", "1", "--max_images", "8",
          "--jpeg_qualities", "50", "--set", f"data_dir={data_dir}", "--set",
          f"idx_dir={idx_dir}", "--set", "batch_size=32", "--set", "steps_per_epoch=2",
          "--set", "eval_batch_size=64", "--set", "progress_bar=False"]
  monkeypatch.setattr(rate_distortion, "plot", _raise_enospc)
  assert sweep.main(argv) == 2
  line = _one_error_line(capsys.readouterr().err)
  assert line == (f"error: cannot write the sweep's tables and sweep.png to {out}: {FULL}: "
                  "free space or choose another --out"), line
  _check_documented("sweep: its tables and plot", line.replace(str(tmp_path), "$TMP"))
  assert sorted(os.listdir(out)) == ["runs"] and not _leftovers(tmp_path)
  monkeypatch.undo()
  assert sweep.main(argv) == 0
  assert set(sweep.OUTPUTS) <= set(os.listdir(out)) and not _leftovers(tmp_path)


def test_a_full_disk_in_a_sweep_names_its_out(tiny_data, tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(checkpoint, "save", _orbax_enospc)
  idx_dir, data_dir = tiny_data
  out = str(tmp_path / "sweep")
  assert sweep.main(["--out", out, "--ks", "2", "--epochs", "1",
                     "--set", f"data_dir={data_dir}", "--set", f"idx_dir={idx_dir}",
                     "--set", "batch_size=32", "--set", "steps_per_epoch=2",
                     "--set", "eval_examples=64", "--set", "progress_bar=False"]) == 2
  line = _one_error_line(capsys.readouterr().err)
  assert line == (f"error: cannot write a checkpoint to {out}/runs/K2/checkpoints: {FULL}: "
                  "free space or choose another --out"), line
  _check_documented("sweep: a K's checkpoint", line.replace(str(tmp_path), "$TMP"))


def test_a_write_no_one_named_is_still_one_line(tiny_data, tmp_path, monkeypatch, capsys):
  """The last resort of launch.py and the tools: an OSError of a full disk that no
  `errors.writing` named is told by its file name (or the folder) in one line."""
  def refuse(workdir, *args, **kwargs):
    raise _enospc(os.path.join(workdir, "checkpoints"))
  monkeypatch.setattr(checkpoint, "make_manager", refuse)
  workdir = str(tmp_path / "run")
  code, err = run_cli(_args([], tiny_data, workdir))
  assert code == 2 and _one_error_line(err) == (
      f"error: cannot write checkpoints to {workdir}: {FULL}: free space or choose another "
      "--workdir"), err[-2000:]

  def work():
    raise _enospc(str(tmp_path / "out" / "x.png"))
  capsys.readouterr()
  assert errors.run_cli(work) == 2
  assert _one_error_line(capsys.readouterr().err) == (
      f"error: cannot write x.png to {tmp_path}/out: {FULL}: free space or choose another --out")


def test_disk_errors_are_recognised_however_they_are_wrapped():
  assert errors.disk_errno(_enospc()) == errno.ENOSPC
  assert errors.disk_errno(OSError(errno.EROFS, "x")) == errno.EROFS
  assert errors.disk_errno(OSError(errno.EACCES, "x")) is None  # the user's permissions
  try:
    _orbax_enospc()
  except ValueError as e:
    assert errors.disk_errno(e) == errno.ENOSPC
  try:
    try:
      raise OSError(errno.EDQUOT, "quota")
    except OSError as inner:
      raise RuntimeError("wrapped") from inner
  except RuntimeError as e:
    assert errors.disk_errno(e) == errno.EDQUOT
  assert str(errors.DiskError("metrics.jsonl", "runs/x", errno.EROFS)) == (
      "cannot write metrics.jsonl to runs/x: Read-only file system: choose a writable "
      "--workdir")
  assert errors.disk_errno(ValueError("RESOURCE_EXHAUSTED: out of memory")) is None


# --------------------------------------------------------------------------- the doc

SECTION = """Every write a command makes (checkpoints, metrics.jsonl, TensorBoard events, pictures,
codes files, reports, dataset preparation), refused by the disk (full, over quota,
read-only, failing), ends it with one line and exit status 2; what was written before
stays, nothing is left half-written, and the same command resumes (or completes) once
there is space. Each row is a test (`tests/test_full_disk.py`, which injects the error,
and, where it says so, fills a real tmpfs; other tests fill one under a checkpoint, the
image cache and the compilation cache). A data_dir too full for the decoded-image cache,
or a full compilation cache, is a one-line warning: the run goes on without it.

| what could not be written | the one line printed (exit status 2) |
|---|---|
"""
_WRITTEN: list[str] = []


def _check_documented(what: str, line: str) -> None:
  test_errors._check_documented(f"| {what} | `{line.replace('|', '/')}` |", _WRITTEN,  # pylint: disable=protected-access
                                "tests/test_full_disk.py")


@pytest.fixture(scope="module", autouse=True)
def _write_doc_section():
  yield
  if os.environ.get("AE_JAX_WRITE_ERRORS_DOC") and _WRITTEN:
    test_errors.write_doc_section("A full disk", SECTION, _WRITTEN)
