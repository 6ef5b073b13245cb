"""A trained run, loaded: which checkpoint a report measured (`run_identity`, `run_summary`),
its dataset, what kind of codes it makes, and the images it takes.

Every tool that reads a run (compression, evaluation) starts here; the halves themselves
are restored by `ae_jax.training.checkpoint` (`restore_encoder`, `restore_decoder`).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np

from ae_jax.core.errors import UserError
from ae_jax.training.config_lib import LATER_FIELDS, RESUMABLE_CHANGES
from ae_jax.training.workdir import checkpoint_steps, read_run_config


def run_identity(workdir: str, step: int | None = None) -> dict:
  """{"workdir", "config_hash", "step", "checkpoint_id"} naming a run's checkpoint (default:
  its latest)."""
  cfg = read_run_config(workdir)
  steps = checkpoint_steps(workdir)
  if not steps:
    raise UserError(f"{workdir} has no checkpoint yet: train it first "
                    f"(python launch.py --config configs/... --workdir {workdir})")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise UserError(f"{workdir} has no checkpoint of step {step} (it keeps {steps}): "
                    "choose one of those steps")
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel  (imports JAX)
  return {"workdir": os.path.abspath(workdir), "config_hash": config_hash(cfg), "step": step,
          "checkpoint_id": checkpoint.checkpoint_id(workdir, step)}


def run_summary(workdir: str, step: int) -> str:
  """Which run and checkpoint `step` a report measured (the step the report pinned, e.g.
  `run_identity(workdir)["step"]`), and how far that run had trained:
  '<workdir>, checkpoint step S (E of N epochs[; unfinished])', E from its metrics.jsonl
  (unknown without one)."""
  cfg = read_run_config(workdir)
  epochs = None
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      for line in f:
        try:
          row = json.loads(line)
          row_step, row_epoch = int(row["step"]), int(row["epoch"])
        except (ValueError, KeyError, TypeError, IndexError):
          continue  # not a row: training reports those; here the count is only a note
        epochs = max(epochs or 0, row_epoch if row_step <= step else 0)
  except OSError:
    pass
  total = cfg.get("num_epochs")
  if epochs is None:  # a copy without metrics.jsonl (decode needs only the checkpoints)
    return (f"{workdir}, checkpoint step {step} (of {total} epochs; how many were trained "
            "is unknown: no metrics.jsonl)")
  late = "" if epochs == total else "; unfinished"
  return f"{workdir}, checkpoint step {step} ({epochs} of {total} epochs{late})"


# What config_hash left out before more fields became resumable: codes files written then
# hold this form of the hash, and still decode.
EARLIER_RESUMABLE = ("num_epochs", "progress_bar", "checkpoint_every_steps",
                      "checkpoints_to_keep", "learning_rate")


def config_hash(cfg: dict, left_out: Sequence[str] = RESUMABLE_CHANGES) -> str:
  """A short hash of a run's config.json, without the fields a resume may change."""
  # Fields a resume may change do not change which weights a step holds.
  kept = {k: v for k, v in cfg.items() if k not in left_out}
  for key, neutral in LATER_FIELDS.items():  # at that value: the hash of runs from before it
    if key in kept and kept[key] == neutral:
      del kept[key]
  return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def is_vq_run(cfg: dict) -> bool:
  """Whether a run's encoder gives integer codes (a VQ-VAE's: ae_jax/models/vq.py)."""
  from ae_jax.models import registry, vq  # pylint: disable=import-outside-toplevel  (JAX)
  return vq.is_vq_encoder(registry.resolve(cfg["encoder"]["name"], "encoder"))


def has_prior(cfg: dict) -> bool:
  """Whether a run is a learned codec's: an encoder with a prior (ae_jax/models/codec.py)."""
  from ae_jax.models import codec, registry  # pylint: disable=import-outside-toplevel
  return codec.has_prior(registry.resolve(cfg["encoder"]["name"], "encoder"))


def is_hyperprior(cfg: dict) -> bool:
  """Whether a run is a hyperprior codec's (ae_jax/models/hyperprior.py): its codes are
  version 4 files, of images of any size."""
  from ae_jax.models import hyperprior, registry  # pylint: disable=import-outside-toplevel
  return hyperprior.is_hyperprior(registry.resolve(cfg["encoder"]["name"], "encoder"))


def check_images(images: np.ndarray, image_shape: tuple[int, ...], what: str) -> None:
  if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
    raise UserError(f"{what} have shape {tuple(images.shape[1:])} (H, W, C) but the run "
                    f"takes {tuple(image_shape)}: give images of that size")
  if images.dtype != np.uint8:
    raise UserError(f"{what} are {images.dtype}, not uint8 pixels: give 8-bit images")


def run_dataset(cfg: dict, data_dir: str | None = None, idx_dir: str | None = None):
  """The tfds builder of a run's dataset: where the run's config.json says, unless
  `data_dir` / `idx_dir` (the tools' --data_dir / --idx_dir, which its messages name)."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  return data.get_builder(
      cfg["dataset"], data_dir or cfg.get("data_dir"), idx_dir or cfg.get("idx_dir"),
      options="--", dataset_fix="the run's config.json names it, and this tfds does not "
      "know it: install the package that registers it, or use a run of a known dataset",
      test_fraction=cfg.get("test_fraction", LATER_FIELDS["test_fraction"]))


def run_images(images, image_shape: tuple[int, ...], what: str) -> np.ndarray:
  """`images` (an array, or a list of arrays of several sizes) as the run takes them: uint8
  [N, *image_shape]. Images of the run's size are kept; larger ones give their centre crop
  of it (the tools take the size the run trained on: the codes files hold one image shape);
  one smaller, or of other channels, is a `UserError` naming it by index."""
  h, w, c = image_shape
  if isinstance(images, np.ndarray) and tuple(images.shape[1:]) == (h, w, c):
    return images
  out = []
  for i, im in enumerate(images):
    if im.ndim != 3 or im.shape[2] != c or im.shape[0] < h or im.shape[1] < w:
      raise UserError(f"image {i} of {what} is {im.shape[1]}x{im.shape[0]}x"
                      f"{im.shape[2] if im.ndim == 3 else 1}, and the run takes {w}x{h}x{c} "
                      "(centre crops of larger images): give images at least that large, "
                      f"with {c} channel(s)")
    top, left = (im.shape[0] - h) // 2, (im.shape[1] - w) // 2
    out.append(im[top:top + h, left:left + w])
  return np.stack(out) if out else np.zeros((0, h, w, c), np.uint8)
