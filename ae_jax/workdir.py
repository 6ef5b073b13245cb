"""What a run leaves in its workdir: config.json, metrics.jsonl, TensorBoard events, images/."""
from __future__ import annotations

import json
import os
import sys
import time

import ml_collections
import numpy as np

from ae_jax import config_lib
from ae_jax.errors import UserError


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
  if not isinstance(cfg, dict) or not {"model", "latent_dim", "image_shape"} <= set(cfg):
    raise UserError(f"{path} is not a training run's config: give the workdir of a "
                    "training run")
  return cfg


def config_record(config: ml_collections.ConfigDict, image_shape) -> dict:
  """The JSON form of a run's config, plus the image shape its models were built for."""
  record = json.loads(config.to_json())
  record["image_shape"] = list(image_shape)
  return record


def check_writable(workdir: str) -> None:
  """Refuses, before any work, a workdir whose parent is missing or that cannot be written."""
  workdir = os.path.abspath(workdir)
  parent = os.path.dirname(workdir)
  if not os.path.isdir(parent):
    raise UserError(f"the parent of --workdir ({parent}) does not exist: create it or "
                    "choose another --workdir")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is a file: choose a folder")
  target = workdir if os.path.isdir(workdir) else parent
  if not os.access(target, os.W_OK | os.X_OK):
    raise UserError(f"{target} is not writable: choose a writable --workdir")


def move_aside(workdir: str) -> str | None:
  """Renames an existing workdir to WORKDIR.old-<time> (nothing is deleted); returns it."""
  if not os.path.exists(workdir):
    return None
  dest = f"{os.path.abspath(workdir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  os.rename(workdir, dest)
  print(f"Moved the previous run aside to {dest}.", file=sys.stderr)
  return dest


def prepare(workdir: str, record: dict) -> None:
  """Creates the workdir and writes config.json, refusing a workdir of another run."""
  check_writable(workdir)
  try:
    os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create --workdir {workdir} ({e.strerror}): choose a writable "
                    "path") from None
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise UserError(f"cannot read {path} ({e}): use another --workdir") from None
    changed = config_lib.differences(old, record)
    if changed:
      raise UserError(f"--workdir {workdir} holds a run with another config (differs in "
                      f"{', '.join(changed)}): use another --workdir, the same config to "
                      "resume it, or --restart to move it aside and start over")
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


class MetricsLog:
  """Appends one JSON object per epoch to metrics.jsonl and the scalars to TensorBoard."""

  def __init__(self, workdir: str, enabled: bool = True):
    """`enabled=False` (processes other than 0) reads the log but never writes it."""
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.enabled = enabled
    self._tb = None
    if enabled:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def rows(self) -> list[dict]:
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_after(self, step: int) -> list[dict]:
    """Drops rows logged after `step` (a resume repeats them) and returns the rest."""
    kept = [r for r in self.rows() if r["step"] <= step]
    if not self.enabled:
      return kept
    with open(self.path + ".tmp", "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(self.path + ".tmp", self.path)
    return kept

  def write(self, row: dict, images: np.ndarray | None = None) -> None:
    if not self.enabled:
      return
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    with self._tb.as_default(step=row["step"]):
      for key, value in row.items():
        if key not in ("epoch", "step"):
          tf.summary.scalar(key, value)
      if images is not None:
        tf.summary.image("originals_noisy_restored", images[None])
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
