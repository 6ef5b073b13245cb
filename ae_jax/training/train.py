"""Training and evaluation: `train_and_evaluate`, its epoch loop, and the named pieces the loop
reads as one screen (`_train`): how the steps are called, how their losses are settled, the
checkpoints, the evaluation and the logging, each in its banner-commented section below.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from typing import Callable, Iterator, NoReturn

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.sharding import Mesh, NamedSharding

from ae_jax.training import checkpoint, config_lib, objectives, parallel, runs, steps
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.core import plots
from ae_jax.training import workdir as workdir_lib
from ae_jax.core.errors import UserError, writing
from ae_jax.training.signals import Interrupted, StopRequests  # noqa: F401 (re-exported)
from ae_jax.training.steps import TrainState, create_train_state, train_step_jit  # noqa: F401 (re-exported)

# The loop's stop requests (a name tests replace with a scripted stop: tests/test_resume.py).
_StopRequests = StopRequests


# ------------------------------------------------------------------------ evaluation

def evaluate(state: TrainState, eval_images, config, mesh,
             sets: list | None = None) -> tuple[dict, dict]:
  """Metrics over the whole eval split, and (original, noisy, restored) of its first images.

  `sets`: `eval_sets(config, eval_images, image_shape)`, made once by the caller; by
  default the images as they are, all of the model's size. A set of another size goes in
  batches of at most its own number of images (rounded up to the devices), not padded to
  eval_batch_size: a padded batch of 1,000 photographs would not fit in memory."""
  totals = shown = None
  first_batch = n = 0
  for images, apply_fn, padded in sets or [(eval_images, None, None)]:
    # A size other than the model was built for: the same parameters in a model built for
    # it (apply_fn), the images padded to what its strides need.
    in_state = state if apply_fn is None else state.replace(apply_fn=apply_fn)
    batch = config.eval_batch_size
    if apply_fn is not None:  # a few large images (photographs): no padding to a full batch
      batch = min(batch, -(-len(images) // jax.device_count()) * jax.device_count())
    for clean, mask, b in data.eval_batches(images, batch):
      sums, first = steps.eval_step(
          in_state, parallel.global_array(clean, parallel.batch_sharding(mesh)),
          parallel.global_array(mask, parallel.batch_sharding(mesh)), first_batch + b,
          loss_kind=config.loss, seed=config.seed, loc=config.noise.loc,
          scale=config.noise.scale, num_shown=config.num_images,
          shown_sharding=parallel.replicated(mesh), weights=objectives.weights_of(config),
          warmup_steps=config.loss_warmup_steps, padded=padded)
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
      shown = first if shown is None else shown
    first_batch += -(-len(images) // batch)
    n += len(images)
  val = {k: float(v) / n for k, v in jax.device_get(totals).items()}
  if "val_noisy_psnr" in val:
    val["val_psnr_gain"] = val["val_psnr"] - val["val_noisy_psnr"]
  objectives.add_elbo(val, "val_", config.loss)
  # The first batch may be padded (fewer eval images than num_images): show real ones only.
  first_set = len((sets or [(eval_images,)])[0][0])
  return val, {k: v[:min(config.num_images, first_set)]
               for k, v in jax.device_get(shown).items()}


def eval_sets(config, eval_images, image_shape) -> list[tuple]:
  """How the eval images meet the model: [(uint8 images [n, h, w, C], apply_fn or None,
  padded (height, width) or None)], in the split's order by first appearance of each size.

  Images of the size the model was built for go in as they are (apply_fn None). Others,
  for a model that takes any size (`models.registry.size_multiple`), are evaluated whole:
  grouped by size (each size compiles its own eval step), each group padded to a multiple
  of what the model's strides need and the output cropped back; for a model of one size,
  their centre crops of it are evaluated."""
  image_shape = tuple(image_shape)
  if isinstance(eval_images, np.ndarray) and tuple(eval_images.shape[1:]) == image_shape:
    return [(eval_images, None, None)]
  multiple = models.registry.size_multiple(config)
  if multiple is None:
    return [(runs.run_images(eval_images, image_shape, f"the {config.eval_split} split"),
             None, None)]
  groups = {}
  for i, im in enumerate(eval_images):
    groups.setdefault(tuple(im.shape), []).append(i)
  sets = []
  for shape, where in groups.items():
    images = np.stack([eval_images[i] for i in where])
    if shape == image_shape:
      sets.append((images, None, None))
      continue
    padded = tuple(-(-d // multiple) * multiple for d in shape[:2])
    model = models.from_config(config, (*padded, shape[2]))
    sets.append((images, model.apply, padded))
  return sets


# ------------------------------------------------------------------------ the steps, as jit calls

def _choose_pipeline(config, train_mb: float | None) -> str:
  """The pipeline a config (or a config.json record) runs: 'auto' is 'device' when the
  training split's uint8 images (`train_mb` MiB; None: not known before decoding them)
  fit in device_data_mb, else 'stream'."""
  if config["input_pipeline"] != "auto":
    return config["input_pipeline"]
  return "device" if train_mb is not None and train_mb <= config["device_data_mb"] else "stream"


def _model_shape(config, source) -> tuple[int, int, int]:
  """The image shape the model is built for and trains on: crop_size x crop_size, else
  the images' own size (one for all: several are refused with the fix)."""
  h, w, c = source.image_shape
  if config.crop_size:
    return (config.crop_size, config.crop_size, c)
  if h is None:
    raise UserError(f"the images of {config.dataset} have several sizes: set "
                    "--config.crop_size=N to train on random N x N crops of them (N at most "
                    "their shortest side)")
  return (h, w, c)


def _crop(config, source) -> int:
  """The crop size the train step draws, or 0 where the images are the crop already."""
  crop = config.crop_size or 0
  return 0 if tuple(source.image_shape) == (crop, crop, source.image_shape[2]) else crop


def _check_crops(config, source, image_shape) -> None:
  """Refuses, naming it, an image smaller than the crop (or, for a model of one size, an
  eval image smaller than it: its centre crop is evaluated)."""
  splits = [config.train_split] if _crop(config, source) else []
  if (source.image_shape != tuple(image_shape)
      and models.registry.size_multiple(config) is None):
    splits.append(config.eval_split)
  for split in splits:
    small = source.smallest(split)
    if small and min(small[:2]) < image_shape[0]:
      raise UserError(f"the image {small[2]} is {small[1]}x{small[0]}, smaller than the "
                      f"crop_size {image_shape[0]}: lower --config.crop_size to at most "
                      f"{min(small[:2])}, or move it out of the dataset")


def _steps_per_epoch(config, n_train: int) -> int:
  return config.steps_per_epoch or n_train // config.batch_size  # checked: at most a split


def _steps_per_call(config, steps_per_epoch: int, backend: str) -> int:
  if config.steps_per_call:
    return config.steps_per_call
  if backend != "cpu":
    # Measured on an H200 (benchmarks/results/20261127-accelerator-h200.md): a whole epoch
    # per call (scan) is 2.8-19x faster than one step per call at batch 128.
    return steps_per_epoch
  # Measured on XLA:CPU (benchmarks/pipeline.py at 83c9b83, docs/performance.md): the dense step
  # runs ~25% faster in a scan of 32 steps; the conv step runs ~4-5x slower in any scan
  # than as one jit call per batch. Modules say which they are (SCAN_ON_CPU: the dense
  # families); a module that does not say runs one step per call.
  if not all(models.registry.scans_on_cpu(config[role], role) for role in ("encoder", "decoder")):
    return 1
  # A divisor of the epoch near 32 (468 steps: 36), so every call has the same length and
  # the scan compiles once: a shorter last call compiled a second one (~0.7 s, epoch 1).
  near = [d for d in range(16, 65) if steps_per_epoch % d == 0]
  return min(near, key=lambda d: (abs(d - 32), d)) if near else 32


def _scan_unroll(backend: str) -> int:
  """Train steps per iteration of the scan's loop. On XLA:CPU 4 saves the loop's per-
  iteration overhead: with 1 the dense step is 6-14% slower; 2 and 6 are within 3% of 4,
  12 within 5% (benchmarks/dense_variants.py at commit 83c9b83, in-process A/B). Elsewhere
  unmeasured, so XLA's default."""
  return 4 if backend == "cpu" else 1


def _call_bounds(start: int, steps_per_epoch: int, first_step: int, per_call: int,
                 every: int) -> list[tuple[int, int]]:
  """[begin, end) of each jit call in an epoch (indices within the epoch).

  Calls end on multiples of `per_call` and on checkpoint steps, counted from fixed
  origins, so a run resumed at a checkpoint makes exactly the calls an unbroken run makes.
  """
  cuts = set(range(per_call, steps_per_epoch, per_call)) | {steps_per_epoch}
  if every:
    cuts |= {s - first_step for s in range(first_step + 1, first_step + steps_per_epoch)
             if s % every == 0}
  bounds, begin = [], start
  for end in sorted(c for c in cuts if c > start):
    bounds.append((begin, end))
    begin = end
  return bounds


@dataclasses.dataclass(frozen=True)
class _Calls:
  """How a run's train steps are called: on the device pipeline, several steps per jit call
  on the resident split (`train_images`); on the stream pipeline, one step per tf.data batch.
  Everything here is fixed for the run."""
  config: ml_collections.ConfigDict
  mesh: Mesh
  source: data.Source
  n_train: int
  steps_per_epoch: int
  train_images: jax.Array | tuple | None  # None: streamed; a tuple: flat_images' arrays
  per_call: int
  unroll: int
  weights: tuple
  shard: NamedSharding | None
  crop: int  # the random crops' side drawn in the step (0: the images as they are)
  channels: int  # the crops' channels (1 where there is no crop)

  @classmethod
  def of(cls, config, mesh: Mesh, source: data.Source, n_train: int, image_shape,
         steps_per_epoch: int, train_mb: float | None) -> _Calls:
    train_images = None
    crop = _crop(config, source)
    rep = parallel.replicated(mesh)
    if _choose_pipeline(config, train_mb) == "device" and crop:
      # Images of any sizes, end to end, cropped in the step.
      flat = data.flat_images(source.load_images(config.train_split))
      small = int(np.argmin(flat[2].min(axis=1)))
      if flat[2][small].min() < crop:  # a dataset whose files are not named (not a folder's)
        raise UserError(f"image {small} of {config.train_split} is {flat[2][small][1]}x"
                        f"{flat[2][small][0]}, smaller than crop_size {crop}: lower "
                        f"--config.crop_size to at most {flat[2][small].min()}")
      train_images = tuple(parallel.global_array(a, rep) for a in flat)
    elif _choose_pipeline(config, train_mb) == "device":
      train_images = parallel.global_array(source.load_images(config.train_split), rep)
    backend = jax.default_backend()
    # On one device the constraint is a no-op: leave it out so the step compiles as before.
    shard = parallel.batch_sharding(mesh) if jax.device_count() > 1 else None
    return cls(config, mesh, source, n_train, steps_per_epoch, train_images,
               _steps_per_call(config, steps_per_epoch, backend), _scan_unroll(backend),
               objectives.weights_of(config), shard, crop, image_shape[2] if crop else 1)

  def epoch(self, epoch: int, start: int) -> Iterator[tuple[int, Callable]]:
    """(end, call) for each jit call of `epoch` from index `start` on: `call(state)` runs the
    steps up to index `end` (within the epoch) and returns (state, per-step outputs)."""
    config, first_step = self.config, epoch * self.steps_per_epoch
    if self.train_images is not None:
      perm = parallel.global_array(data.epoch_permutation(config.seed, epoch, self.n_train),
                                   parallel.replicated(self.mesh))
      for begin, end in _call_bounds(start, self.steps_per_epoch, first_step, self.per_call,
                                     config.checkpoint_every_steps):
        yield end, functools.partial(self._on_device, perm=perm, begin=begin, end=end)
      return
    batches = data.stream_epoch(
        self.source.builder, config.train_split, batch_size=config.batch_size,
        steps=self.steps_per_epoch, epoch=epoch, seed=config.seed, loc=config.noise.loc,
        scale=config.noise.scale, first_step=first_step, start=start,
        num_shards=jax.process_count(), shard=jax.process_index(), crop=self.crop)
    for i, batch in zip(range(start, self.steps_per_epoch), batches):
      yield i + 1, functools.partial(self._streamed, batch=batch)

  def _on_device(self, state, *, perm, begin: int, end: int):
    config = self.config
    return steps.device_train_steps(
        state, self.train_images, perm, jnp.int32(begin), num_steps=end - begin,
        batch_size=config.batch_size, seed=config.seed, loc=config.noise.loc,
        scale=config.noise.scale, loss_kind=config.loss, sharding=self.shard,
        unroll=self.unroll, weights=self.weights, warmup_steps=config.loss_warmup_steps,
        crop=self.crop, channels=self.channels)

  def _streamed(self, state, *, batch):
    noisy, clean = (parallel.from_local_batch(x, self.mesh) for x in batch)
    state, out = train_step_jit(state, noisy, clean, self.config.loss, self.config.seed,
                                self.weights, self.config.loss_warmup_steps)
    return state, jax.tree.map(lambda v: v[None], out)


# ------------------------------------------------------------------------ settling losses

@dataclasses.dataclass
class EpochSums:
  """An epoch's train loss and each reported term, summed over its steps in step order in
  float64. Checkpointed with the state (`progress`), so an epoch resumed half-way logs the
  same train_loss as an unbroken one, to the last digit."""
  loss: float = 0.0
  terms: dict[str, float] = dataclasses.field(default_factory=dict)

  @classmethod
  def resumed(cls, progress: dict) -> EpochSums:
    return cls(float(progress.get("epoch_loss_sum", 0.0)),
               {k: float(v) for k, v in progress.get("epoch_term_sums", {}).items()})

  def add(self, outputs: dict) -> None:
    """Adds one call's per-step outputs ('loss' and each reported name), step by step."""
    for v in np.asarray(outputs["loss"], np.float64):
      self.loss += float(v)
    for name, per_step in outputs.items():
      if name != "loss":
        for v in np.asarray(per_step, np.float64):
          self.terms[name] = self.terms.get(name, 0.0) + float(v)

  def progress(self) -> dict:
    """What a mid-epoch checkpoint keeps (a model reporting no terms has no term sums)."""
    # A copy: the checkpoint is written asynchronously, while later steps add to the sums.
    return {"epoch_loss_sum": self.loss,
            **({"epoch_term_sums": dict(self.terms)} if self.terms else {})}

  def means(self, steps_per_epoch: int, loss_kind: str) -> dict:
    """train_loss and train_<name> per step, and train_elbo where the loss is a likelihood."""
    row = {"train_loss": self.loss / steps_per_epoch,
           **{f"train_{k}": v / steps_per_epoch for k, v in sorted(self.terms.items())}}
    objectives.add_elbo(row, "train_", loss_kind)
    return row


@dataclasses.dataclass
class _Epoch:
  """One epoch in progress: where it (re)started, its sums, the dispatched jit call whose
  losses are not fetched yet, its progress bar and clock.

  The host stays one call ahead of the device: a call's losses are fetched (`settle`) only
  after the next call is dispatched, so the device never waits for the host's checks.
  `diverged(step, outputs_at_step)` is called, and raises, when a loss is not finite.
  """
  index: int
  first_step: int
  start: int
  sums: EpochSums
  bar: tqdm.tqdm
  batch_size: int
  diverged: Callable[[int, dict], NoReturn]
  t0: float = dataclasses.field(default_factory=time.perf_counter)
  pending: tuple[dict, int] | None = None  # (outputs, the step its call ended at)

  @classmethod
  def begin(cls, config, epoch: int, steps_per_epoch: int, step: int, progress: dict,
            show: bool, diverged: Callable[[int, dict], NoReturn]) -> _Epoch:
    first_step = epoch * steps_per_epoch
    start = step - first_step
    bar = tqdm.tqdm(total=steps_per_epoch, initial=start, unit="step", leave=False,
                    desc=f"epoch {epoch + 1}/{config.num_epochs}", file=sys.stderr,
                    # None: tqdm draws only on a terminal (logs get the epoch lines)
                    disable=None if config.progress_bar and show else True)
    return cls(epoch, first_step, start, EpochSums.resumed(progress) if start else EpochSums(),
               bar, config.batch_size, diverged)

  def push(self, outputs: dict, end: int) -> None:
    """Holds a call just dispatched (ending at global step `end`), settling the one before."""
    self.settle()
    self.pending = (outputs, end)

  def settle(self) -> None:
    """Waits for the pending call, checks its losses and adds them up."""
    if self.pending is None:
      return
    outputs, end = self.pending
    self.pending = None
    outputs = jax.device_get(outputs)
    values = np.asarray(outputs["loss"], np.float64)
    if not np.isfinite(values).all():
      i = int(np.argmin(np.isfinite(values)))
      self.diverged(end - len(values) + i + 1,
                    {k: float(np.asarray(v)[i]) for k, v in outputs.items()})
    self.sums.add(outputs)
    self.bar.update(len(values))
    rate = (self.bar.n - self.start) * self.batch_size / (time.perf_counter() - self.t0)
    self.bar.set_postfix(img_s=f"{rate:.0f}", refresh=False)

  def close(self) -> float:
    """Ends the bar; the seconds since the epoch (re)started."""
    seconds = time.perf_counter() - self.t0
    self.bar.close()
    return seconds


def _diverged(config, manager, workdir: str, epoch: int, step: int, at_step: dict) -> NoReturn:
  """Stops the run at a non-finite loss at `step`, naming its cause and fix."""
  # That loss came from the parameters of step - 1: no checkpoint of them (or later) may be
  # the one a rerun resumes from.
  checkpoint.set_aside_diverged(manager, workdir, step - 1)
  raise UserError(f"the loss became {at_step['loss']} in epoch {epoch + 1} at step {step}: "
                  + _divergence_fix(config, step, at_step, manager.latest_step()))


def _divergence_fix(config, step: int, at_step: dict, last_checkpoint: int | None) -> str:
  """What to do about a non-finite loss at `step`, given that step's reported values.

  Every reported value finite but their weighted sum not: a loss weight times its term
  overflowed float32 (config_lib checks each weight is a float32 number, not its products;
  configs/vae.py with loss_weights.kl=1e38: inf at step 1, its KL term 1.9 nats on average).
  At step 1 the loss comes from the initial parameters, before any update: the learning rate
  cannot be the cause. Either fix changes the config, so the rerun needs --restart. Otherwise
  the updates diverged, and a lower learning rate resumes from the last good checkpoint.
  """
  parts = {k: v for k, v in at_step.items() if k != "loss"}
  weighted = [(abs(w * parts[k]), k, w) for k, w in objectives.weights_of(config).terms if k in parts]
  if weighted and all(np.isfinite(v) for v in parts.values()):
    _, name, weight = max(weighted)
    return (f"loss_weights.{name}={weight:g} times its term (on average {parts[name]:.4g} per "
            f"image) overflows float32: lower --config.loss_weights.{name} and rerun with "
            "--restart")
  if step == 1:
    return ("the initial parameters already give it (no update yet: not the learning rate): "
            "check the model's fields and --config.loss_weights, and rerun with --restart")
  return _lower_learning_rate(last_checkpoint)


def _lower_learning_rate(last_checkpoint: int | None) -> str:
  """The fix of updates that diverged; the checkpoint it resumes from, where there is one."""
  if last_checkpoint is None:
    return "lower --config.learning_rate and rerun"
  return ("lower --config.learning_rate and rerun: it resumes from the last good checkpoint, "
          f"step {last_checkpoint}")


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]).all()


def _check_finite(state, epoch: int, config, manager) -> None:
  """Refuses to save or evaluate a state that is no longer finite (parameters or Adam's
  moments). The loss checked in `_Epoch.settle` comes before each step's update: the last
  update of a call can still overflow.

  Finite parameters with non-finite moments are gradients whose squares overflow float32
  (beyond ~1.8e19): Adam keeps them whatever the learning rate. A loss weight above 1 is
  then the likely cause (configs/vae.py, loss_weights.kl=1e20: the loss finite, Adam's second
  moments inf by step 4, the parameters finite: its update is 0).
  """
  if bool(_all_finite((state.params, state.opt_state))):
    return
  where = f"in epoch {epoch + 1} by step {int(state.step)}"
  last = manager.latest_step()
  if not bool(_all_finite(state.params)):
    raise UserError(f"the parameters became non-finite (NaN or Inf) {where}: "
                    + _lower_learning_rate(last))
  name, weight = max(objectives.weights_of(config).terms, key=lambda nw: nw[1], default=("", 0.0))
  if weight > 1:
    raise UserError(f"Adam's second moments overflowed float32 {where} (gradients beyond "
                    "~1.8e19, squared; a lower learning rate does not shrink them): lower "
                    f"--config.loss_weights.{name} (now {weight:g}) and rerun with --restart")
  raise UserError(f"Adam's moments became non-finite (NaN or Inf) {where}: "
                  + _lower_learning_rate(last))


# ------------------------------------------------------------------------ checkpoints

def _writing_checkpoints(workdir: str):
  """`errors.writing` for orbax's saves: their errors surface at the next save or wait,
  not always that of the step that failed, so the message names the folder."""
  return writing("a checkpoint", workdir_lib.checkpoint_dir(workdir))


def _save_mid_epoch(manager, workdir: str, state, epoch: int, config, sums: EpochSums) -> None:
  """A checkpoint inside an epoch, with the epoch's sums so far (not waited for)."""
  _check_finite(state, epoch, config, manager)
  with _writing_checkpoints(workdir):
    checkpoint.save(manager, state, sums.progress())


def _save_epoch_end(manager, workdir: str, state) -> None:
  with _writing_checkpoints(workdir):
    checkpoint.save(manager, state, {"epoch_loss_sum": 0.0})
    if jax.default_backend() == "cpu":
      # The CPU runs the steps too: a write left running in the background competes with
      # the next epoch (dense median epoch 0.47 -> 0.43 s, six alternating runs); an
      # accelerator's steps overlap it for free.
      checkpoint.wait(manager)


def _stop(manager, workdir: str, signum: int, step: int) -> NoReturn:
  """Waits for the checkpoint of `step`, then ends the run as a stop signal asked."""
  with _writing_checkpoints(workdir):
    checkpoint.wait(manager)
  raise Interrupted(signum, step)


# ------------------------------------------------------------------------ logging

def _grid_rows(shown: dict, noisy: bool) -> list[tuple[str, np.ndarray]]:
  rows = [("original", shown["original"])]
  if noisy:
    rows.append(("noisy", shown["noisy"]))
  return rows + [("restored", shown["restored"])]


def _epoch_row(run: _Epoch, state, val: dict, seconds: float, config,
               steps_per_epoch: int) -> dict:
  """The epoch's metrics.jsonl row; images/s counts the steps this process ran."""
  return {"epoch": run.index + 1, "step": int(state.step),
          **run.sums.means(steps_per_epoch, config.loss), **val,
          "images_per_sec": (steps_per_epoch - run.start) * config.batch_size / seconds,
          "seconds": seconds}


def _log_epoch(log: workdir_lib.MetricsLog, workdir: str, config, row: dict, shown: dict,
               history: list[dict]) -> None:
  """The row in metrics.jsonl and TensorBoard (with the picture grid), the grid and the loss
  curve as PNGs (process 0 only)."""
  rows = _grid_rows(shown, config.noise.scale > 0)
  with writing("images/reconstructions.png", workdir):
    plots.save_grid(os.path.join(workdir, "images", "reconstructions.png"), rows)
  log.write(row, np.concatenate([np.concatenate(list(im), axis=1) for _, im in rows], 0))
  with writing("images/loss.png", workdir):
    plots.save_loss_curve(os.path.join(workdir, "images", "loss.png"), history, config.loss)


def _epoch_line(config, row: dict) -> str:
  elbo = f"val_elbo {row['val_elbo']:.2f} nats " if "val_elbo" in row else ""
  return (f"epoch {row['epoch']}/{config.num_epochs}: train_loss {row['train_loss']:.4f} "
          f"val_loss {row['val_loss']:.4f} {elbo}val_psnr {row['val_psnr']:.2f} dB "
          f"{row['images_per_sec']:.0f} img/s {row['seconds']:.1f}s")


# ------------------------------------------------------------------------ the run

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       restart: bool = False) -> TrainState:
  """Trains the autoencoder `config` describes, evaluating and checkpointing each epoch.

  Data order and noise are functions of (seed, epoch, step) and the checkpoint holds the
  optimizer state, so a run killed at any moment and resumed ends bit-identical (on CPU)
  to an unbroken one. SIGTERM/SIGINT save a checkpoint of the current step, then raise
  `Interrupted`; a second one ends the process at once (ae_jax/training/signals.py).
  Batches are sharded over all devices (of all processes, when the environment starts
  several: see ae_jax/training/parallel.py); process 0 alone writes files.

  Args:
    config: an experiment config (see configs/default.py for its fields).
    workdir: where config.json, metrics.jsonl, checkpoints/, images/ and tensorboard/
      go. A workdir holding a checkpoint of the same config is resumed; one holding
      another config is refused.
    restart: move an existing run in `workdir` aside (renamed, not deleted) and start over.

  Returns:
    The final TrainState.

  Raises:
    UserError: a mistake the user can fix (bad config, missing data, unusable workdir,
      a diverging loss).
    Interrupted: a stop signal arrived; the run can be resumed.

  A write the disk refuses (full, read-only, failing) is a `UserError` naming what and
  where (errors.DiskError); the last checkpoint written whole stays and resumes.
  """
  config_lib.validate(config)
  parallel.initialize_from_env()
  parallel.check_batch_size(config.batch_size)
  parallel.check_batch_size(config.eval_batch_size, "eval_batch_size")
  workdir_lib.check_writable(workdir)
  source = data.Source(config.dataset, config.data_dir, config.idx_dir,
                       splits=(config.train_split, config.eval_split),
                       test_fraction=config.test_fraction)
  image_shape = _model_shape(config, source)
  _check_crops(config, source, image_shape)
  model = _checked_model(config, image_shape)
  n_train = source.num_examples(config.train_split)
  if config.batch_size > n_train:
    raise UserError(f"batch_size {config.batch_size} is larger than the {n_train} "
                    f"examples of {config.train_split}: lower --config.batch_size")
  if config.steps_per_epoch and config.steps_per_epoch > n_train // config.batch_size:
    raise UserError(f"steps_per_epoch {config.steps_per_epoch} is more than the "
                    f"{n_train // config.batch_size} whole batches of {config.batch_size} in "
                    f"{config.train_split}: lower --config.steps_per_epoch, or leave it unset "
                    "for the whole split")
  eval_images = source.load_images(config.eval_split, config.eval_examples)
  sets = eval_sets(config, eval_images, image_shape)
  train_mb = source.megabytes(config.train_split)
  if _crop(config, source) and train_mb is not None and train_mb * 2**20 >= 2**31:
    train_mb = None  # the crops' int32 indices reach 2 GiB: streamed

  lock = workdir_lib.RunLock()  # held by process 0 until the run ends

  def prepare_workdir():
    lock.acquire(workdir)  # before anything is moved or written: no other run is there
    if restart and workdir_lib.move_aside(workdir):
      lock.acquire(workdir)  # the lock went with the old run: lock the new folder
    workdir_lib.prepare(workdir, workdir_lib.config_record(config, image_shape),
                        steps_per_epoch=_steps_per_epoch(config, n_train),
                        pipeline_of=lambda record: _choose_pipeline(record, train_mb))

  try:
    parallel.on_main_process(prepare_workdir)
    log = workdir_lib.MetricsLog(workdir, enabled=parallel.is_main_process())
    manager = checkpoint.make_manager(workdir, config.checkpoints_to_keep)
    try:
      with _StopRequests() as stop:
        return _train(config, model, workdir, source, image_shape, n_train, eval_images, log,
                      manager, stop, sets, train_mb)
    finally:
      try:
        with _writing_checkpoints(workdir):  # an asynchronous save's error surfaces here
          try:
            checkpoint.wait(manager)
          finally:
            manager.close()  # also after a failed save
      finally:
        log.close()
  finally:
    lock.release()


def _checked_model(config, image_shape) -> models.Autoencoder:
  """The config's autoencoder, refused in one line when its halves do not fit together or
  the images, or when a loss weight names a term the model does not report."""
  model, _ = models.checked_autoencoder(config, image_shape,
                                        f"the {config.dataset} images")
  losses, reported = objectives.reported_names(model, image_shape)
  extra = sorted(set(config.loss_weights) - set(losses))
  if extra:
    raise UserError(f"config.loss_weights names {extra}, which the model does not report "
                    f"(it reports {losses or 'no terms'}): remove them or fix the name")
  clash = sorted(set(losses) & set(reported))
  if clash:
    raise UserError(f"the model reports {clash} both as loss terms and as metrics: rename one")
  return model


def _start_or_resume(config, model, workdir: str, image_shape, mesh, manager,
                     log: workdir_lib.MetricsLog, steps_per_epoch: int, say):
  """(state, progress, history): the initial state or the newest good checkpoint's, its
  progress record (the epoch's sums so far) and the metrics rows up to its step."""
  state = steps.initial_state(model, config, image_shape, out_shardings=parallel.replicated(mesh))
  progress = {}
  restored = checkpoint.restore_latest_good(manager, workdir, state)
  if restored is not None:
    state, progress = restored
    say(f"Resuming {workdir} from step {int(state.step)}.")
  history = log.truncate_after(int(state.step))
  if parallel.is_main_process():  # fields a resume changed, now that its step is known
    workdir_lib.apply_resumed_changes(workdir, workdir_lib.config_record(config, image_shape),
                                      int(state.step), steps_per_epoch)
  return state, progress, history


def _train(config, model, workdir, source, image_shape, n_train, eval_images, log, manager,
           stop, sets, train_mb) -> TrainState:
  main = parallel.is_main_process()
  say = (lambda msg: print(msg, file=sys.stderr)) if main else (lambda msg: None)
  mesh = parallel.make_mesh()
  steps_per_epoch = _steps_per_epoch(config, n_train)
  state, progress, history = _start_or_resume(config, model, workdir, image_shape, mesh,
                                              manager, log, steps_per_epoch, say)
  calls = _Calls.of(config, mesh, source, n_train, image_shape, steps_per_epoch, train_mb)
  every = config.checkpoint_every_steps

  for epoch in range(int(state.step) // steps_per_epoch, config.num_epochs):
    # -------------------------------------------------------------------- train
    run = _Epoch.begin(config, epoch, steps_per_epoch, int(state.step), progress, main,
                       functools.partial(_diverged, config, manager, workdir, epoch))
    for end, call in calls.epoch(epoch, run.start):
      state, outputs = call(state)
      step = run.first_step + end
      run.push(outputs, step)  # and settles the call before
      # At the epoch's end, the evaluation and its checkpoint below come first: a stop
      # that skipped them would lose the epoch's metrics row (the resume starts the next).
      if ((every and step % every == 0) or stop.signum) and end < steps_per_epoch:
        run.settle()
        _save_mid_epoch(manager, workdir, state, epoch, config, run.sums)
        if stop.signum:
          run.close()
          _stop(manager, workdir, stop.signum, step)
    run.settle()
    seconds = run.close()

    # -------------------------------------------------------------------- evaluate and log
    _check_finite(state, epoch, config, manager)  # before its metrics are logged and it is saved
    val, shown = evaluate(state, eval_images, config, mesh, sets)
    row = _epoch_row(run, state, val, seconds, config, steps_per_epoch)
    history.append(row)
    # A full disk stops the run before this epoch's checkpoint: the rerun resumes from the
    # last one, and logs this epoch again (metrics.jsonl is truncated to that step).
    if main:
      _log_epoch(log, workdir, config, row, shown, history)

    # -------------------------------------------------------------------- checkpoint
    _save_epoch_end(manager, workdir, state)
    say(_epoch_line(config, row))
    if stop.signum and epoch + 1 < config.num_epochs:  # after the last epoch: done anyway
      _stop(manager, workdir, stop.signum, int(state.step))
  return state
