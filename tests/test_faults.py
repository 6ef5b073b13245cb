"""Every output whole or not at all, whatever stops a command half-way: a stop signal
(SIGTERM, Ctrl-C), a full disk under --overwrite, a crash while files are moved into
place; and the last resorts of a command: XLA out of memory, orbax's noise about a damaged
checkpoint. Each ends in one line (exit 2, or 128 + the signal's number), leaves no
output half-written nor two runs' files mixed, and the same command then completes.

The signals are real (`os.kill` of this process from inside the write they interrupt).
The rows of docs/errors.md's "Stopped, cut short or out of memory" section are these
cases; regenerate them with
  AE_JAX_WRITE_ERRORS_DOC=1 python -m pytest tests/test_faults.py
"""
import asyncio
import builtins
import errno
import hashlib
import logging
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_errors  # pylint: disable=wrong-import-position
from test_errors import _args, run_cli, trained_run  # noqa: F401 pylint: disable=wrong-import-position,unused-import
from test_full_disk import _leftovers, _one_error_line, vae_run  # noqa: F401 pylint: disable=wrong-import-position,unused-import

# pylint: disable=wrong-import-position
from ae_jax.compression import compress_cli, out_of_domain, rate_distortion
from ae_jax.core import errors, files, plots
from ae_jax.data import idx_builder
from ae_jax.evaluation import latent, sample
from ae_jax.training import checkpoint, steps
# pylint: enable=wrong-import-position

STOPPED = "interrupted ({}): no output was left half-written: rerun the same command"


def _stop_after_writing(sig=signal.SIGTERM):
  """A stand-in for a write function whose first argument is the path (or the object
  whose `save` it is, then the path): writes half a file there, then the signal arrives."""
  def write(*args, **kwargs):  # pylint: disable=unused-argument
    path = next(a for a in args if isinstance(a, (str, os.PathLike)))
    with builtins.open(path, "wb") as f:
      f.write(b"\x89PNG half a file")
    os.kill(os.getpid(), sig)
    raise AssertionError("the signal should have stopped the write")
  return write


def _stopping_open(name: str):
  """An `open` that, writing a file whose path contains `name`, writes half of it and is
  stopped by SIGTERM."""
  def fake(file, mode="r", *args, **kwargs):
    f = builtins.open(file, mode, *args, **kwargs)
    if name in os.fspath(file) and "w" in mode:
      f.write(b"half")
      f.flush()
      os.kill(os.getpid(), signal.SIGTERM)
    return f
  return fake


def _snapshot(root) -> dict:
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      with open(os.path.join(folder, name), "rb") as f:
        out[os.path.relpath(os.path.join(folder, name), root)] = hashlib.sha256(
            f.read()).hexdigest()
  return out


# ------------------------------------------------------------------- stop signals

def _stop_cases(run, vae, tmp):
  """{tool: (main, arguments, (module, attribute, the write that is stopped), outputs)}."""
  out = str(tmp / "out")
  return {
      "compress encode": (compress_cli.main, ["encode", "--workdir", run, "--dataset",
                                              "fashion_mnist", "--max_images", "4",
                                              "--out", f"{out}.aec"],
                          (files, "open", _stopping_open(".aec")), ["out.aec"]),
      "compress decode": (compress_cli.main, ["decode", "--workdir", run, "--codes",
                                              str(tmp / "ok.aec"), "--out", out],
                          (files.Image.Image, "save", _stop_after_writing()), ["out"]),
      "rate_distortion": (rate_distortion.main, ["--workdir", run, "--out", out,
                                                 "--max_images", "8", "--jpeg_qualities",
                                                 "50", "--codecs", "png,jpeg"],
                          (rate_distortion, "plot", _stop_after_writing()), ["out"]),
      "latent": (latent.main, ["--workdir", run, "--out", out, "--max_images", "16"],
                 (latent, "save_scatter", _stop_after_writing()), ["out"]),
      "out_of_domain": (out_of_domain.main, ["--workdir", run, "--out", out, "--num_digits",
                                             "8", "--max_images", "8", "--quants", "uint8"],
                        (rate_distortion, "write_table", _stopped_after_the_table()), ["out"]),
      "sample": (sample.main, ["--workdir", vae, "--out", f"{out}.png", "--num", "4"],
                 (files.Image.Image, "save", _stop_after_writing()), ["out.png"]),
  }


def _stopped_after_the_table():
  """rate_distortion.write_table, stopped by SIGTERM after its first file."""
  real = rate_distortion.write_table

  def write_table(out, name, *args, **kwargs):
    real(out, name, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
  return write_table


STOP_TOOLS = ["compress encode", "compress decode", "rate_distortion", "latent",
              "out_of_domain", "sample"]


@pytest.mark.parametrize("tool", STOP_TOOLS)
def test_a_tool_stopped_by_sigterm_leaves_no_output_and_the_rerun_completes(
    tool, trained_run, vae_run, tmp_path, monkeypatch, capsys):
  """SIGTERM while a tool writes: it ended the process where it stood (Python's default),
  leaving a truncated PNG, part of a report or an empty --out. Now the outputs being
  written are removed on the way out, one line, exit 143, and the rerun completes."""
  if tool == "compress decode":
    assert compress_cli.main(["encode", "--workdir", trained_run, "--dataset", "fashion_mnist",
                              "--max_images", "4", "--out", str(tmp_path / "ok.aec")]) == 0
  main, argv, (module, name, stop), outputs = _stop_cases(trained_run, vae_run,
                                                          tmp_path)[tool]
  before = _snapshot(tmp_path)
  capsys.readouterr()
  monkeypatch.setattr(module, name, stop, raising=False)
  assert main(argv) == 128 + signal.SIGTERM
  err = capsys.readouterr().err
  assert err == STOPPED.format("SIGTERM") + "\n", err[-3000:]
  if tool == "rate_distortion":
    _check_documented("a tool stopped by SIGTERM while writing its outputs (exit 143)",
                      err.strip())
  assert _snapshot(tmp_path) == before and not _leftovers(tmp_path)
  assert not any(os.path.exists(tmp_path / o) for o in outputs)
  monkeypatch.undo()
  assert main(argv) == 0, capsys.readouterr().err[-2000:]
  assert all(os.path.exists(tmp_path / o) for o in outputs) and not _leftovers(tmp_path)


def test_ctrl_c_in_a_tool_is_one_line_too(trained_run, tmp_path, monkeypatch, capsys):
  out = tmp_path / "out"
  monkeypatch.setattr(rate_distortion, "plot", _stop_after_writing(signal.SIGINT))
  assert rate_distortion.main(["--workdir", trained_run, "--out", str(out), "--max_images",
                               "8", "--codecs", "png"]) == 130
  err = capsys.readouterr().err
  assert err == STOPPED.format("SIGINT") + "\n", err[-3000:]
  _check_documented("a tool stopped by Ctrl-C (exit 130)", err.strip())
  assert not out.exists() and not _leftovers(tmp_path)


def test_sample_overwrite_stopped_keeps_the_picture_before(vae_run, tmp_path, monkeypatch,
                                                          capsys):
  """`sample --overwrite` on a full disk or stopped replaced a good PNG with a truncated one."""
  png = tmp_path / "samples.png"
  argv = ["--workdir", vae_run, "--out", str(png), "--num", "4"]
  assert sample.main(argv) == 0
  good = png.read_bytes()
  monkeypatch.setattr(files.Image.Image, "save", _stop_after_writing())
  assert sample.main(argv + ["--overwrite", "--seed", "1"]) == 143
  assert png.read_bytes() == good and not _leftovers(tmp_path)
  monkeypatch.setattr(files.Image.Image, "save",
                      lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
  assert sample.main(argv + ["--overwrite", "--seed", "1"]) == 2
  assert png.read_bytes() == good and not _leftovers(tmp_path)
  monkeypatch.undo()
  capsys.readouterr()
  assert sample.main(argv + ["--overwrite", "--seed", "1"]) == 0
  assert png.read_bytes() != good and png.read_bytes()[:4] == b"\x89PNG"


def test_training_stopped_while_tfds_prepares_leaves_nothing_half_prepared(
    tiny_data, tmp_path, monkeypatch):
  """launch.py on SIGTERM before its training loop (preparing the data): tfds' incomplete
  folder was left behind by Python's default ending; now it is removed on the way out."""
  data_dir = tmp_path / "tfds"
  real = idx_builder.IdxImages._generate_examples  # pylint: disable=protected-access

  def stopped(self, *args):
    for i, example in enumerate(real(self, *args)):
      if i == 100:
        os.kill(os.getpid(), signal.SIGTERM)
      yield example
  monkeypatch.setattr(idx_builder.IdxImages, "_generate_examples", stopped)
  argv = _args([f"--config.data_dir={data_dir}"], tiny_data, str(tmp_path / "run"))
  code, err = run_cli(argv)
  assert code == 143, err[-3000:]
  line = [l for l in err.splitlines() if l.strip() and not l.startswith("Downloading")]
  assert line == ["interrupted: rerun the same command to start (or resume) the run"], err
  _check_documented("launch.py stopped by SIGTERM before its training loop (exit 143)",
                    line[0])
  assert not _leftovers(tmp_path)
  monkeypatch.undo()
  code, err = run_cli(argv)
  assert code == 0, err[-3000:]


# ----------------------------------------------------------- reports as a set

def test_overwrite_never_mixes_two_runs_reports(trained_run, tmp_path, monkeypatch, capsys):
  """rate_distortion --overwrite on a full disk left a truncated rd.json beside the
  previous run's rd.png. Now the earlier report stays whole until the new one is, and
  then the new one replaces it whole."""
  out = tmp_path / "rd"
  argv = ["--workdir", trained_run, "--out", str(out), "--max_images", "8", "--codecs",
          "png,jpeg", "--jpeg_qualities", "50"]
  assert rate_distortion.main(argv) == 0
  first = _snapshot(out)
  assert sorted(first) == sorted(rate_distortion.OUTPUTS)
  (out / "mine.txt").write_text("the user's")
  monkeypatch.setattr(rate_distortion, "plot", lambda *a, **k: (_ for _ in ()).throw(
      OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
  capsys.readouterr()
  argv += ["--jpeg_qualities", "60", "--overwrite"]  # another report: another table
  assert rate_distortion.main(argv) == 2
  assert _snapshot(out) == {**first, "mine.txt": _snapshot(out)["mine.txt"]}
  monkeypatch.undo()
  assert rate_distortion.main(argv) == 0
  second = _snapshot(out)
  assert set(second) == set(first) | {"mine.txt"} and not _leftovers(tmp_path)
  assert all(second[n] != first[n] for n in ("rd.md", "rd.csv", "rd.json", "rd.png"))


def test_a_report_cut_short_while_moved_in_does_not_block_the_rerun(trained_run, tmp_path,
                                                                   capsys):
  """A crash (SIGKILL) while a report's files are moved into an existing --out leaves
  some of them and its staging folder: the rerun replaces them without --overwrite,
  while a user's own rd.md (no staging folder) is still refused."""
  out = tmp_path / "rd"
  out.mkdir()
  (out / "rd.md").write_text("the new report's, moved in")
  pid = _dead_pid()
  staging = out / f".partial-{pid}.abc123"
  staging.mkdir()
  (staging / "rd.png").write_bytes(b"\x89PNG not moved yet")
  argv = ["--workdir", trained_run, "--out", str(out), "--max_images", "8", "--codecs",
          "png"]
  assert rate_distortion.main(argv) == 0, capsys.readouterr().err
  assert sorted(os.listdir(out)) == sorted(rate_distortion.OUTPUTS)
  assert (out / "rd.md").read_text() != "the new report's, moved in"

  mine = tmp_path / "mine"
  mine.mkdir()
  (mine / "rd.md").write_text("the user's")
  capsys.readouterr()
  assert rate_distortion.main(["--workdir", trained_run, "--out", str(mine), "--codecs",
                               "png"]) == 2
  assert "already holds rd.md: choose another --out or pass --overwrite" in \
      capsys.readouterr().err
  assert (mine / "rd.md").read_text() == "the user's"


def _dead_pid() -> int:
  """The pid of a process that has ended."""
  child = subprocess.Popen(["true"])  # pylint: disable=consider-using-with
  child.wait()
  return child.pid


def test_an_output_set_appears_whole_or_not_at_all(tmp_path):
  """files.output_set itself: a new folder appears with all its files or not at all (no
  empty folder, no parents it made), an existing one keeps its other files."""
  target = tmp_path / "a" / "b" / "out"
  with pytest.raises(RuntimeError):
    with files.output_set(str(target), ["x.md", "y.csv"]) as staging:
      with open(os.path.join(staging, "x.md"), "w") as f:
        f.write("1")
      raise RuntimeError("the second file failed")
  assert os.listdir(tmp_path) == []
  with files.output_set(str(target), ["x.md", "y.csv"]) as staging:
    for name in ("x.md", "y.csv"):
      with open(os.path.join(staging, name), "w") as f:
        f.write(name)
  assert sorted(os.listdir(target)) == ["x.md", "y.csv"]
  assert oct(os.stat(target).st_mode & 0o777) != oct(0o700)  # not mkdtemp's private mode
  (target / "other.txt").write_text("kept")
  with files.output_set(str(target), ["x.md", "y.csv"], overwrite=True) as staging:
    with open(os.path.join(staging, "x.md"), "w") as f:
      f.write("new")
  # y.csv was the earlier set's: it goes, not to be read as this one's
  assert sorted(os.listdir(target)) == ["other.txt", "x.md"]
  assert (target / "x.md").read_text() == "new"


# --------------------------------------------------------------------- out of memory

def _xla_out_of_memory(*args, **kwargs):
  """A real XLA allocation failure: 1.6 TB."""
  jax.jit(lambda: jnp.zeros((400_000, 1_000_000)))()


def test_xla_out_of_memory_is_one_line(tiny_data, tmp_path, monkeypatch, capsys,
                                       trained_run):
  """The last resort behind the footprint check (a lower bound): XLA's RESOURCE_EXHAUSTED
  was a 26-line traceback; now one line with the size, in launch.py and in the tools."""
  monkeypatch.setattr(steps, "initial_state", _xla_out_of_memory)
  code, err = run_cli(_args([], tiny_data, str(tmp_path / "run")))
  line = _one_error_line(err)
  assert code == 2 and line == (
      "error: ran out of memory allocating 1.6 TB: lower --config.batch_size (and "
      "eval_batch_size) or the model's size"), err[-3000:]
  _check_documented("launch.py: XLA out of memory past the footprint check", line)

  monkeypatch.setattr(checkpoint, "restore_encoder", _xla_out_of_memory)
  capsys.readouterr()
  assert compress_cli.main(["encode", "--workdir", trained_run, "--dataset", "fashion_mnist",
                            "--max_images", "4", "--out", str(tmp_path / "c.aec")]) == 2
  line = _one_error_line(capsys.readouterr().err)
  assert line.startswith("error: ran out of memory allocating 1.6 TB: use fewer images"), line
  _check_documented("a tool: XLA out of memory", line)


def test_numpy_out_of_memory_is_one_line_too():
  def work():
    raise MemoryError("Unable to allocate 373. GiB for an array with shape (99999999999,) "
                      "and data type float32")
  assert errors.out_of_memory(MemoryError("Unable to allocate 373. GiB for an array")) \
      == "373. GiB"
  assert errors.run_cli(work) == 2


# ------------------------------------------------------------- a damaged checkpoint

def test_a_damaged_checkpoint_is_one_line_without_asyncio_noise(trained_run, tmp_path,
                                                               monkeypatch, caplog, capsys):
  """compress encode on a damaged checkpoint printed, in 1 of 6 runs, 76 lines of
  'ERROR:asyncio:Task exception was never retrieved' (orbax's other reads, failing as they
  were collected) before its one-line error. Here the restore leaves such a task behind
  for certain; asyncio's record of it is dropped, the one-line error is not."""
  def restore_leaving_a_failed_task(self, *args, **kwargs):  # pylint: disable=unused-argument
    loop = asyncio.new_event_loop()

    async def read_other_array():
      raise ValueError("DATA_LOSS: Error reading \"params.Dense_0.kernel\" in OCDBT database")
    task = loop.create_task(read_other_array())
    loop.run_until_complete(asyncio.sleep(0))  # it fails; no one retrieves its exception
    loop.close()
    del task
    raise ValueError("DATA_LOSS: Error reading \"params.latent_vector.kernel\" in OCDBT database")
  monkeypatch.setattr(checkpoint.ocp.CheckpointManager, "restore", restore_leaving_a_failed_task)
  caplog.set_level(logging.ERROR, logger="asyncio")
  capsys.readouterr()
  assert compress_cli.main(["encode", "--workdir", trained_run, "--dataset", "fashion_mnist",
                            "--max_images", "4", "--out", str(tmp_path / "c.aec")]) == 2
  line = _one_error_line(capsys.readouterr().err)
  assert "cannot be read (ValueError: DATA_LOSS" in line, line
  assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


# --------------------------------------------------------------------------- the doc

SECTION = """A command stopped by a signal (SIGTERM, SIGHUP, Ctrl-C) ends with one line and the
shell's status for it (128 + the signal's number); one that runs out of memory past the
checks made before compiling (ae_jax/models/footprint.py), with one line and exit status 2.
Neither leaves an output half-written: every file is written under a temporary name and
renamed whole, a report's files are staged and moved into --out as a set (with
--overwrite, the earlier set stays whole until the new one is), and the same command then
completes. Each row is a test (`tests/test_faults.py`; the signals are real).

| what happened | the one line printed |
|---|---|
"""
_WRITTEN: list[str] = []


def _check_documented(what: str, line: str) -> None:
  test_errors._check_documented(f"| {what} | `{line.replace('|', '/')}` |", _WRITTEN,  # pylint: disable=protected-access
                                "tests/test_faults.py")


@pytest.fixture(scope="module", autouse=True)
def _write_doc_section():
  yield
  if os.environ.get("AE_JAX_WRITE_ERRORS_DOC") and _WRITTEN:
    test_errors.write_doc_section("Stopped, cut short or out of memory", SECTION, _WRITTEN)
