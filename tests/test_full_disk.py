"""A full disk is one line: every write a command makes, refused by the disk (full, over
quota, read-only, failing), ends the command with `error: cannot write WHAT to WHERE:
<reason>: <fix>`, exit status 2, no traceback, and the last good state resumes.

Each case injects ENOSPC into one write (as the OSError Python raises, or as the message
orbax/TensorStore wrap it in); `test_a_real_full_disk_...` fills a 3 MB tmpfs for real
where this process may mount one. The rows of docs/errors.md's "A full disk" section are
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
from ae_jax.evaluation import latent
from ae_jax.training import checkpoint
# pylint: enable=wrong-import-position
from ae_jax.training import workdir as workdir_lib  # pylint: disable=wrong-import-position

FULL = os.strerror(errno.ENOSPC)


def _enospc(path="") -> OSError:
  return OSError(errno.ENOSPC, FULL, path)


def _raise_enospc(*args, **kwargs):
  raise _enospc()


def _orbax_enospc(*args, **kwargs):
  """What orbax raises for a full disk: TensorStore's error in a ValueError."""
  raise ValueError('RESOURCE_EXHAUSTED: Error writing "step/0" in OCDBT database at local '
                   'file "/x/checkpoints/4.orbax-checkpoint-tmp/state/": Failed to write '
                   f"871943 bytes to file 11: {FULL} [os_error_code='28']")


def _full_open(name: str, modes: str = "wax"):
  """An `open` that refuses to write files whose path contains `name`."""
  def fake(file, mode="r", *args, **kwargs):
    if name in os.fspath(file) and any(m in mode for m in modes):
      raise _enospc(os.fspath(file))
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
  shutil.rmtree(os.path.join(data_dir, "ae_jax_prepared"))  # its record names the original
  monkeypatch.setattr(data, "open", _full_open(".images.npy"), raising=False)
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


# ---------------------------------------------------------------------------- tools

def _tool_cases(run, tmp):
  """(what is being written, the tool's main, its arguments, the refused write, part of the
  line) for each tool's outputs, on the trained tiny `run`."""
  out = str(tmp / "out")
  return [
      ("compress encode: the codes file", compress_cli.main,
       ["encode", "--workdir", run, "--dataset", "fashion_mnist", "--max_images", "4",
        "--out", f"{out}.aec"], (files, "open", _full_open(".aec")),
       f"cannot write out.aec to {tmp}: {FULL}: free space or choose another --out"),
      ("compress decode: the PNGs", compress_cli.main,
       ["decode", "--workdir", run, "--codes", str(tmp / "ok.aec"), "--out", out],
       (files.Image.Image, "save", _raise_enospc),
       f"cannot write the decoded images to {out}: {FULL}"),
      ("rate_distortion: its report", rate_distortion.main,
       ["--workdir", run, "--out", out, "--max_images", "8", "--jpeg_qualities", "50"],
       (rate_distortion, "open", _full_open("rd.")),
       f"cannot write rd.md, rd.csv, rd.json, rd_bd.md, rd_bd.json, rd.png to {out}: {FULL}"),
      ("latent: its pictures", latent.main,
       ["--workdir", run, "--out", out, "--max_images", "16"],
       (latent, "save_scatter", _raise_enospc),
       f"cannot write latent_pca.png and interpolation.png to {out}: {FULL}"),
      ("out_of_domain: its report", out_of_domain.main,
       ["--workdir", run, "--out", out, "--num_digits", "8", "--max_images", "8"],
       (plots, "save_grid", _raise_enospc),
       f"cannot write ood.md, ood.csv, ood.json, ood.png to {out}: {FULL}"),
  ]


TOOL_IDS = ["compress encode", "compress decode", "rate_distortion", "latent", "out_of_domain"]


@pytest.mark.parametrize("index", range(len(TOOL_IDS)), ids=TOOL_IDS)
def test_a_full_disk_in_a_tool_is_one_line(index, one_epoch_run, tmp_path, monkeypatch,
                                           capsys):
  if index == 1:  # decode needs codes
    assert compress_cli.main(["encode", "--workdir", one_epoch_run, "--dataset", "fashion_mnist",
                          "--max_images", "4", "--out", str(tmp_path / "ok.aec")]) == 0
  what, main, argv, (module, name, refuse), expected = _tool_cases(one_epoch_run,
                                                                   tmp_path)[index]
  capsys.readouterr()
  monkeypatch.setattr(module, name, refuse, raising=False)
  assert main(argv) == 2
  err = capsys.readouterr().err
  line = _one_error_line(err)
  assert expected in line and line.endswith("--out"), line
  _check_documented(what, line.replace(str(tmp_path), "$TMP"))
  assert not glob.glob(str(tmp_path / "**" / "*tmp*"), recursive=True)  # no half files


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

SECTION = """## A full disk

Every write a command makes (checkpoints, metrics.jsonl, TensorBoard events, pictures,
codes files, reports, dataset preparation), refused by the disk (full, over quota,
read-only, failing), ends it with one line and exit status 2; what was written before
stays, and the same command resumes once there is space. Each row is a test
(`tests/test_full_disk.py`, which injects the error; one test fills a real 3 MB tmpfs).
A data_dir too full for the decoded-image cache is a warning: the run goes on without it.

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
    with open(DOC) as f:
      text = f.read()
    start = text.find("\n## A full disk")
    text = (text if start < 0 else text[:start]).rstrip("\n") + "\n\n"
    with open(DOC, "w") as f:
      f.write(text + SECTION + "\n".join(_WRITTEN) + "\n")
