"""What a run leaves in its workdir: config.json, metrics.jsonl, TensorBoard events, images/."""
from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import tensorflow as tf

from ae_jax import config_lib
from ae_jax.errors import UserError


def config_record(config: ml_collections.ConfigDict, image_shape) -> dict:
  """The JSON form of a run's config, plus the image shape its models were built for."""
  record = json.loads(config.to_json())
  record["image_shape"] = list(image_shape)
  return record


def prepare(workdir: str, record: dict) -> None:
  """Creates the workdir and writes config.json, refusing a workdir of another run."""
  parent = os.path.dirname(os.path.abspath(workdir))
  if not os.path.isdir(parent):
    raise UserError(f"the parent of --workdir ({parent}) does not exist: create it or "
                    "choose another --workdir")
  try:
    os.makedirs(os.path.join(workdir, "images"), exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create --workdir {workdir} ({e.strerror}): choose a writable "
                    "path") from None
  if not os.access(workdir, os.W_OK):
    raise UserError(f"--workdir {workdir} is not writable: choose a writable path")
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
                      f"{', '.join(changed)}): use another --workdir, or the same config "
                      "to resume it")
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


class MetricsLog:
  """Appends one JSON object per epoch to metrics.jsonl and the scalars to TensorBoard."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def rows(self) -> list[dict]:
    if not os.path.exists(self.path):
      return []
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_after(self, step: int) -> list[dict]:
    """Drops rows logged after `step` (a resume repeats them) and returns the rest."""
    kept = [r for r in self.rows() if r["step"] <= step]
    with open(self.path + ".tmp", "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(self.path + ".tmp", self.path)
    return kept

  def write(self, row: dict, images: np.ndarray | None = None) -> None:
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
    self._tb.close()
