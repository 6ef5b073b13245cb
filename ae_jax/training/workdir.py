"""What a run leaves in its workdir: config.json, metrics.jsonl, TensorBoard events, images/."""
from __future__ import annotations

import errno
import json
import os
import sys
import time

try:
  import fcntl
except ImportError:  # not POSIX: runs go unlocked
  fcntl = None
import ml_collections
import numpy as np

from ae_jax.data import folder
from ae_jax.training import config_lib
from ae_jax.core.errors import UserError, writing

# In every run's config.json (after config_lib.upgrade_record: runs from before the model
# zoo had `model` and `latent_dim` instead of the two groups).
RUN_KEYS = {"encoder", "decoder", "image_shape"}
LOCK = ".lock"  # held by the process training in the workdir (RunLock)


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints")


def checkpoint_steps(workdir: str) -> list[int]:
  """The finished checkpoint steps of a run (orbax names each step's folder by its number)."""
  folder = checkpoint_dir(workdir)
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return sorted(int(n) for n in names if n.isdigit())


def read_run_config(workdir: str) -> dict:
  """A training run's config.json (with its image_shape); `UserError` if there is none."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      cfg = json.load(f)
  except FileNotFoundError:
    raise UserError(f"{workdir} holds no run (no config.json): give the --workdir of a "
                    "training run") from None
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path} ({e}): give the workdir of a training run") from None
  cfg = config_lib.upgrade_record(cfg)
  if not isinstance(cfg, dict) or not RUN_KEYS <= set(cfg):
    raise UserError(f"{path} is not a training run's config: give the workdir of a "
                    "training run")
  return cfg


def config_record(config: ml_collections.ConfigDict, image_shape) -> dict:
  """The JSON form of a run's config, plus the image shape its models were built for. A
  folder dataset is recorded by its absolute path: the tools find it from anywhere."""
  record = json.loads(config.to_json())
  record["dataset"] = folder.normalized(record["dataset"])
  record["image_shape"] = list(image_shape)
  return record


def check_writable(workdir: str) -> None:
  """Refuses, before any work, a workdir that cannot be made or written. Missing parent
  folders are fine (`prepare` makes them, as `mkdir -p` would); the nearest existing one must
  be a writable folder."""
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is a file: choose a folder")
  target = workdir
  while not os.path.exists(target):
    target = os.path.dirname(target)
  if not os.path.isdir(target):
    raise UserError(f"--workdir {workdir} lies under {target}, which is a file: choose "
                    "another --workdir")
  if not os.access(target, os.W_OK | os.X_OK):
    raise UserError(f"{target} is not writable: choose a writable --workdir")
  others = set(os.listdir(workdir) if os.path.isdir(workdir) else ()) - {"config.json.tmp",
                                                                         LOCK}
  if others and not is_run(workdir):
    raise UserError(f"--workdir {workdir} holds other files and no run (no run's "
                    "config.json): choose a new or empty folder (a run writes several files "
                    "there)")


def is_run(workdir: str) -> bool:
  """Whether `workdir` holds a training run: its config.json (the first file a run writes)
  is a JSON object with a run's keys, not some other program's config.json."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    return False
  try:
    with open(path) as f:
      cfg = json.load(f)
  except (OSError, ValueError):  # unreadable or damaged: `prepare` says so
    return True
  cfg = config_lib.upgrade_record(cfg)
  return isinstance(cfg, dict) and RUN_KEYS <= set(cfg)


def _log_changes(workdir: str, step: int, old: dict, new: dict, changed: list[str]) -> None:
  """Appends to WORKDIR/config_changes.jsonl the fields a resume changes, from which step:
  config.json then holds the new values, and this log the run's history."""
  entry = {"from_step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
           "changes": {n: [old.get(n), new.get(n)] for n in changed}}  # top-level fields
  with writing("config_changes.jsonl", workdir), \
      open(os.path.join(workdir, "config_changes.jsonl"), "a") as f:
    f.write(json.dumps(entry) + "\n")


class RunLock:
  """An exclusive lock on a workdir while a run trains in it (flock on WORKDIR/.lock, which
  records the pid): a second run started on the same workdir is refused, instead of both
  writing its checkpoints and metrics (and the second's start deleting the first's
  checkpoint in progress). The operating system drops the lock when the process ends, so
  a killed run leaves none behind."""

  def __init__(self):
    self._file = None

  def acquire(self, workdir: str) -> None:
    """Makes `workdir` if needed and locks it (releasing any lock held before)."""
    self.release()
    try:
      os.makedirs(workdir, exist_ok=True)
      f = open(os.path.join(workdir, LOCK), "a+")  # pylint: disable=consider-using-with
    except OSError as e:
      raise UserError(f"cannot create --workdir {workdir} ({e.strerror}): choose a writable "
                      "path") from None
    if fcntl is not None:
      try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
          # A filesystem without flock (some NFS, FUSE): run, unlocked, as before.
          print(f"warning: cannot lock {f.name} ({e.strerror}): a second run started on "
                "this workdir would not be refused", file=sys.stderr)
        else:
          f.seek(0)
          pid = f.read().strip()
          f.close()
          raise UserError(f"--workdir {workdir} is in use by another training run"
                          f"{f' (pid {pid})' if pid else ''}: wait for it to end, or "
                          "choose another --workdir") from None
    with writing(LOCK, workdir):
      f.truncate(0)
      f.write(f"{os.getpid()}\n")
      f.flush()
    self._file = f

  def release(self) -> None:
    if self._file is not None:
      self._file.close()  # closing drops the flock
      self._file = None


def move_aside(workdir: str) -> str | None:
  """Renames the run in `workdir` to WORKDIR.old-<time>[-n] (nothing is deleted); returns
  the new name, or None when `workdir` holds no run (a folder that is not a run is never
  moved: `check_writable` refuses one that is not empty)."""
  if not is_run(workdir):
    return None
  base = f"{os.path.abspath(workdir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  dest, n = base, 1
  while os.path.exists(dest):  # two restarts within a second
    dest, n = f"{base}-{n}", n + 1
  try:
    os.rename(workdir, dest)
  except OSError as e:
    raise UserError(f"cannot move {workdir} aside to {dest} ({e.strerror}): move or rename "
                    "it yourself, or choose another --workdir") from None
  print(f"Moved the previous run aside to {dest}.", file=sys.stderr)
  return dest


# Fields that choose the input pipeline (its order of batches and noise): they may differ
# on resume only where they choose the same one (`prepare`'s pipeline_of).
PIPELINE_FIELDS = ("input_pipeline", "device_data_mb")


def prepare(workdir: str, record: dict, steps_per_epoch: int | None = None,
            pipeline_of=None) -> None:
  """Creates the workdir and writes config.json, refusing a workdir of another run, or, given
  `steps_per_epoch`, one whose checkpoints are past the epochs `record` asks for (a smaller
  num_epochs cannot undo them, and config.json would then misstate the run).

  `pipeline_of(record)`: the input pipeline a record runs. Given it, `input_pipeline` and
  `device_data_mb` may differ from the run's where they pick the same pipeline ('device'
  for a run whose 'auto' chose it): the same batches. config.json keeps the run's values."""
  check_writable(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create --workdir {workdir} ({e.strerror}): choose a writable "
                    "path") from None
  path = os.path.join(workdir, "config.json")
  deferred = False
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise UserError(f"cannot read {path} ({e}): use another --workdir") from None
    old = config_lib.upgrade_record(old)
    changed = config_lib.differences(old, record)
    if (pipeline_of is not None and set(changed) & set(PIPELINE_FIELDS)
        and all(k in old for k in PIPELINE_FIELDS) and pipeline_of(old) == pipeline_of(record)):
      record = {**record, **{k: old[k] for k in PIPELINE_FIELDS}}
      changed = [name for name in changed if name not in PIPELINE_FIELDS]
    if changed:
      raise UserError(f"--workdir {workdir} holds a run with another config (differs in "
                      f"{', '.join(changed)}): use another --workdir, the same config to "
                      "resume it, or --restart to move it aside and start over")
    done = max(checkpoint_steps(workdir), default=0)
    if steps_per_epoch and done > record["num_epochs"] * steps_per_epoch:
      need = -(-done // steps_per_epoch)
      raise UserError(f"--workdir {workdir} has trained to step {done}, past the "
                      f"{record['num_epochs']} epoch(s) of --config.num_epochs="
                      f"{record['num_epochs']} ({steps_per_epoch} steps each): set "
                      f"--config.num_epochs={need} or more, or --restart to start over")
    # Resumable changes are written once the step the run resumes from is known
    # (apply_resumed_changes).
    deferred = bool(config_lib.differences(old, record, resumable=True))
  if not deferred:
    _write_config(path, record)  # config.json first: it is what marks a folder as a run
  with writing("images/", workdir):
    os.makedirs(os.path.join(workdir, "images"), exist_ok=True)


def _write_config(path: str, record: dict) -> None:
  """config.json, replaced whole (a full disk leaves the old one, and no temporary file)."""
  with writing("config.json", os.path.dirname(path)):
    try:
      with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
      os.replace(path + ".tmp", path)
    finally:
      if os.path.exists(path + ".tmp"):
        os.remove(path + ".tmp")


# Fields that shaped the steps already taken: a run with nothing left to train keeps them.
LEFT_AS_TRAINED = ("learning_rate",)


def apply_resumed_changes(workdir: str, record: dict, step: int,
                          steps_per_epoch: int) -> None:
  """Once a run resumes from `step`: writes the resumable fields `record` changes into
  config.json and logs them, from `step` on, in config_changes.jsonl. With nothing left
  to train, LEFT_AS_TRAINED fields keep the values the run was trained with."""
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    old = config_lib.upgrade_record(json.load(f))
  changed = config_lib.differences(old, record, resumable=True)
  if not changed:
    return
  record = dict(record)
  if step >= record["num_epochs"] * steps_per_epoch:
    kept = [name for name in changed if name in LEFT_AS_TRAINED]
    for name in kept:
      record[name] = old[name]
    if kept:
      print(f"note: {workdir} has nothing left to train; {', '.join(kept)} left as trained",
            file=sys.stderr)
    changed = [name for name in changed if name not in kept]
  if changed:
    _log_changes(workdir, step, old, record, changed)
  # The run's config.json with only those fields changed (prepare may have let others,
  # such as an input_pipeline choosing the same pipeline, differ without a change).
  _write_config(path, {**old, **{name: record[name] for name in changed}})


class MetricsLog:
  """Appends one JSON object per epoch to metrics.jsonl, and its scalars and image grid to
  TensorBoard (WORKDIR/tensorboard, written by tensorboardX: no TensorFlow is imported)."""

  def __init__(self, workdir: str, enabled: bool = True):
    """`enabled=False` (processes other than 0) reads the log but never writes it."""
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.enabled = enabled
    self._tb_dir = os.path.join(workdir, "tensorboard")
    self._tb = None  # opened at the first event (or by truncate_after)
    self._purge_step = None

  def rows(self) -> list[dict]:
    """The logged rows. A last line cut short (a run killed while appending it) is left
    out with a warning; any other line that is not JSON is a `UserError`."""
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      lines = [line for line in f if line.strip()]
    rows = []
    for i, line in enumerate(lines):
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        if i + 1 < len(lines):
          raise UserError(f"line {i + 1} of {self.path} is not JSON: repair or delete it, "
                          "or start over with --restart") from None
        print(f"warning: the last line of {self.path} is incomplete; left out",
              file=sys.stderr)
        continue
      if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        raise UserError(f"line {i + 1} of {self.path} is not a metrics row (an object with "
                        "an integer step): repair or delete it, or start over with --restart")
      rows.append(row)
    return rows

  def truncate_after(self, step: int) -> list[dict]:
    """Drops rows logged after `step` (a resume repeats them) and returns the rest.

    Their TensorBoard events stay in the earlier event files: the file this run writes
    starts with a SessionLog.START at step + 1 (tensorboardX's purge_step), and TensorBoard
    discards the events of earlier files from that step on, so each step shows once. (Its
    Rust data server skips the mark; it drops a series' points from a step on when the
    step goes back, i.e. as the resumed run writes each step again.)"""
    rows = self.rows()
    kept = [r for r in rows if r["step"] <= step]
    if not self.enabled:
      return kept
    with writing("metrics.jsonl", os.path.dirname(self.path)):
      try:
        with open(self.path + ".tmp", "w") as f:
          f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(self.path + ".tmp", self.path)
      finally:
        if os.path.exists(self.path + ".tmp"):
          os.remove(self.path + ".tmp")
    self.close()  # a writer opened before would not carry the purge
    self._purge_step = step + 1
    if len(kept) < len(rows):
      self._writer()  # hide the dropped steps now, not only once the resume reaches them
    return kept

  def write(self, row: dict, images: np.ndarray | None = None) -> None:
    """Appends `row` (with its integer step) and logs its other values as scalars, and
    `images` (H, W, C in [0, 1]) as one image, at that step."""
    if not self.enabled:
      return
    # A row cut short by a full disk is left out when the run is resumed (`rows`).
    with writing("metrics.jsonl", os.path.dirname(self.path)), open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    with writing("the TensorBoard events", self._tb_dir):
      tb, step = self._writer(), row["step"]
      for tag, value in row.items():
        if tag not in ("epoch", "step"):
          tb.add_scalar(tag, float(value), step)
      if images is not None:
        pixels = np.clip(np.asarray(images, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        tb.add_image("originals_noisy_restored", pixels.reshape(pixels.shape[:2] + (-1,)),
                     step, dataformats="HWC")
      tb.flush()

  def _writer(self):
    if self._tb is None:
      with writing("the TensorBoard events", self._tb_dir):
        self._tb = EventFile(self._tb_dir, self._purge_step)
      self._purge_step = None  # a writer reopened after close() must not hide this run's events
    return self._tb

  def close(self) -> None:
    if self._tb is not None:
      tb, self._tb = self._tb, None
      with writing("the TensorBoard events", self._tb_dir):
        tb.close()


def _tensorboardx():
  """tensorboardX's event file writer, summaries and protos.

  tensorboardX imports torch where it is installed (only to accept its tensors): it is kept
  out, as TensorFlow is, so a run loads neither (seconds and hundreds of MB)."""
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # makes tensorboardX's `import torch` fail, as if absent
  try:
    # pylint: disable=import-outside-toplevel
    from tensorboardX import event_file_writer, summary
    from tensorboardX.proto import event_pb2
  finally:
    if blocked:
      del sys.modules["torch"]
  return event_file_writer, summary, event_pb2


class EventFile:
  """A new TensorBoard event file in `logdir`, written in the caller's thread.

  tensorboardX's SummaryWriter writes from a thread of its own: a full disk ended that
  thread with a traceback, and the next epoch's events then waited forever on its full
  queue. A run writes a dozen events an epoch; here each `flush` writes them, and a
  refused write raises where `MetricsLog` names it. The file is the one SummaryWriter
  writes: a version event, then, given `purge_step`, its SessionLog.START at that step
  (TensorBoard discards earlier files' events from there on)."""

  def __init__(self, logdir: str, purge_step: int | None = None):
    writer, self._summary, self._pb = _tensorboardx()
    os.makedirs(logdir, exist_ok=True)
    # TensorBoard reads a run's event files in the order of their names; tensorboardX names
    # them by the second only, so the suffix orders (and keeps apart) files of one second.
    self._file = writer.EventsWriter(os.path.join(logdir, "events"),
                                     f".{time.time_ns()}.{os.getpid()}")
    if purge_step is not None:
      self._add(self._pb.Event(step=purge_step, file_version="brain.Event:2"))
      self._add(self._pb.Event(step=purge_step, session_log=self._pb.SessionLog(
          status=self._pb.SessionLog.START)))
    self.flush()

  def _add(self, event, step: int | None = None) -> None:
    event.wall_time = time.time()
    if step is not None:
      event.step = int(step)
    self._file.write_event(event)

  def add_scalar(self, tag: str, value: float, step: int) -> None:
    self._add(self._pb.Event(summary=self._summary.scalar(tag, value)), step)

  def add_image(self, tag: str, pixels: np.ndarray, step: int, dataformats: str = "HWC"):
    self._add(self._pb.Event(summary=self._summary.image(tag, pixels,
                                                         dataformats=dataformats)), step)

  def flush(self) -> None:
    self._file.flush()

  def close(self) -> None:
    self._file.close()
