"""Training and evaluation: TrainState, pure jitted steps, and `train_and_evaluate`."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from ae_jax.training import checkpoint, config_lib, objectives, parallel, runs, steps
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.core import plots
from ae_jax.training import workdir as workdir_lib
from ae_jax.core.errors import UserError, writing
from ae_jax.training.steps import TrainState, create_train_state, train_step_jit  # noqa: F401 (re-exported)


def evaluate(state: TrainState, eval_images, config, mesh,
             sets: list | None = None) -> tuple[dict, dict]:
  """Metrics over the whole eval split, and (original, noisy, restored) of its first images.

  `sets`: `eval_sets(config, eval_images, image_shape)`, made once by the caller; by
  default the images as they are, all of the model's size."""
  totals = shown = None
  first_batch = n = 0
  for images, apply_fn, padded in sets or [(eval_images, None, None)]:
    # A size other than the model was built for: the same parameters in a model built for
    # it (apply_fn), the images padded to what its strides need.
    in_state = state if apply_fn is None else state.replace(apply_fn=apply_fn)
    for clean, mask, b in data.eval_batches(images, config.eval_batch_size):
      sums, first = steps.eval_step(
          in_state, parallel.global_array(clean, parallel.batch_sharding(mesh)),
          parallel.global_array(mask, parallel.batch_sharding(mesh)), first_batch + b,
          loss_kind=config.loss, seed=config.seed, loc=config.noise.loc,
          scale=config.noise.scale, num_shown=config.num_images,
          shown_sharding=parallel.replicated(mesh), weights=objectives.weights_of(config),
          warmup_steps=config.loss_warmup_steps, padded=padded)
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
      shown = first if shown is None else shown
    first_batch += -(-len(images) // config.eval_batch_size)
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


# ------------------------------------------------------------------------ the loop

class Interrupted(Exception):
  """SIGTERM/SIGINT arrived: a checkpoint of the current step was saved and waited for."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"stopped by signal {signum} at step {step}; the checkpoint is saved: "
                     "rerun the same command to resume")
    self.signum, self.step = signum, step


class _StopRequests:
  """Turns SIGTERM and SIGINT into a flag the loop checks between jit calls."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        # A signal the parent set to be ignored (a shell's background job: SIGINT) stays so.
        if signal.getsignal(sig) is not signal.SIG_IGN:
          self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


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


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]).all()


def _check_finite(state, epoch: int) -> None:
  """Refuses to save or evaluate a state that is no longer finite (parameters or Adam's
  moments). The loss checked in `settle` comes before each step's update: the last update
  of a call can still overflow."""
  if not bool(_all_finite((state.params, state.opt_state))):
    raise UserError(f"the parameters became non-finite (NaN or Inf) in epoch {epoch + 1} by "
                    f"step {int(state.step)}: lower --config.learning_rate and rerun (the last "
                    "good checkpoint is kept and resumes)")


def _steps_per_epoch(config, n_train: int) -> int:
  return config.steps_per_epoch or n_train // config.batch_size  # checked: at most a split


def _steps_per_call(config, steps_per_epoch: int, backend: str) -> int:
  if config.steps_per_call:
    return config.steps_per_call
  if backend != "cpu":
    # Measured on an H200 (benchmarks/results/20261127-accelerator-h200.md): a whole epoch
    # per call (scan) is 2.8-19x faster than one step per call at batch 128.
    return steps_per_epoch
  # Measured on XLA:CPU (benchmarks/pipeline.py, docs/performance.md): the dense step
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
  12 within 5% (`python benchmarks/dense_variants.py`, in-process A/B). Elsewhere
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


def _grid_rows(shown: dict, noisy: bool) -> list[tuple[str, np.ndarray]]:
  rows = [("original", shown["original"])]
  if noisy:
    rows.append(("noisy", shown["noisy"]))
  return rows + [("restored", shown["restored"])]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       restart: bool = False) -> TrainState:
  """Trains the autoencoder `config` describes, evaluating and checkpointing each epoch.

  Data order and noise are functions of (seed, epoch, step) and the checkpoint holds the
  optimizer state, so a run killed at any moment and resumed ends bit-identical (on CPU)
  to an unbroken one. SIGTERM/SIGINT save a checkpoint of the current step, then raise
  `Interrupted`. Batches are sharded over all devices (of all processes, when the
  environment starts several: see ae_jax/training/parallel.py); process 0 alone writes files.

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


def _writing_checkpoints(workdir: str):
  """`errors.writing` for orbax's saves: their errors surface at the next save or wait,
  not always that of the step that failed, so the message names the folder."""
  return writing("a checkpoint", workdir_lib.checkpoint_dir(workdir))


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


def _train(config, model, workdir, source, image_shape, n_train, eval_images, log, manager,
           stop, sets, train_mb) -> TrainState:
  main = parallel.is_main_process()
  say = (lambda msg: print(msg, file=sys.stderr)) if main else (lambda msg: None)
  mesh = parallel.make_mesh()
  rep, batch_sharding = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  state = steps.initial_state(model, config, image_shape, out_shardings=rep)
  progress = {}
  restored = checkpoint.restore_latest_good(manager, workdir, state)
  if restored is not None:
    state, progress = restored
    say(f"Resuming {workdir} from step {int(state.step)}.")
  history = log.truncate_after(int(state.step))
  steps_per_epoch = _steps_per_epoch(config, n_train)
  if main:  # fields a resume changed, now that its step is known
    workdir_lib.apply_resumed_changes(workdir, workdir_lib.config_record(config, image_shape),
                                      int(state.step), steps_per_epoch)

  pipeline = _choose_pipeline(config, train_mb)
  crop = _crop(config, source)
  if pipeline == "device" and crop:  # images of any sizes, end to end, cropped in the step
    flat = data.flat_images(source.load_images(config.train_split))
    small = int(np.argmin(flat[2].min(axis=1)))
    if flat[2][small].min() < crop:  # a dataset whose files are not named (not a folder's)
      raise UserError(f"image {small} of {config.train_split} is {flat[2][small][1]}x"
                      f"{flat[2][small][0]}, smaller than crop_size {crop}: lower "
                      f"--config.crop_size to at most {flat[2][small].min()}")
    train_images = tuple(parallel.global_array(a, rep) for a in flat)
  elif pipeline == "device":
    train_images = parallel.global_array(source.load_images(config.train_split), rep)
  per_call = _steps_per_call(config, steps_per_epoch, jax.default_backend())
  weights = objectives.weights_of(config)
  unroll = _scan_unroll(jax.default_backend())
  every = config.checkpoint_every_steps
  # On one device the constraint is a no-op: leave it out so the step compiles as before.
  shard = batch_sharding if jax.device_count() > 1 else None

  for epoch in range(int(state.step) // steps_per_epoch, config.num_epochs):
    first_step = epoch * steps_per_epoch
    start = int(state.step) - first_step
    # The epoch's loss is summed in step order in float64 and checkpointed with the
    # state, so an epoch resumed half-way logs the same train_loss as an unbroken one.
    loss_sum = float(progress.get("epoch_loss_sum", 0.0)) if start else 0.0
    # Each reported term's sum, the same way (a model reporting none has none).
    term_sums = {k: float(v) for k, v in progress.get("epoch_term_sums", {}).items()} \
        if start else {}
    bar = tqdm.tqdm(total=steps_per_epoch, initial=start, unit="step", leave=False,
                    desc=f"epoch {epoch + 1}/{config.num_epochs}", file=sys.stderr,
                    # None: tqdm draws only on a terminal (logs get the epoch lines)
                    disable=None if config.progress_bar and main else True)
    t0 = time.perf_counter()
    pending = None

    def settle():
      """Waits for the oldest dispatched call, checks and adds up its losses."""
      nonlocal pending, loss_sum
      if pending is None:
        return
      outputs, end = pending
      pending = None
      outputs = jax.device_get(outputs)
      values = np.asarray(outputs["loss"], np.float64)
      if not np.isfinite(values).all():
        bad = end - len(values) + int(np.argmin(np.isfinite(values))) + 1
        # That loss came from the parameters of step bad - 1: no checkpoint of them (or
        # later) may be the one a rerun resumes from.
        checkpoint.set_aside_diverged(manager, workdir, bad - 1)
        raise UserError(f"the loss became {values[~np.isfinite(values)][0]} in epoch "
                        f"{epoch + 1} at step {bad}: lower --config.learning_rate and rerun "
                        "(the last good checkpoint is kept and resumes)")
      for v in values:
        loss_sum += float(v)
      for name, per_step in outputs.items():
        if name != "loss":
          for v in np.asarray(per_step, np.float64):
            term_sums[name] = term_sums.get(name, 0.0) + float(v)
      bar.update(len(values))
      rate = (bar.n - start) * config.batch_size / (time.perf_counter() - t0)
      bar.set_postfix(img_s=f"{rate:.0f}", refresh=False)

    if pipeline == "device":
      perm = parallel.global_array(data.epoch_permutation(config.seed, epoch, n_train), rep)
      calls = ((b, e, None) for b, e in _call_bounds(start, steps_per_epoch, first_step,
                                                     per_call, every))
    else:
      batches = data.stream_epoch(
          source.builder, config.train_split, batch_size=config.batch_size, steps=steps_per_epoch,
          epoch=epoch, seed=config.seed, loc=config.noise.loc, scale=config.noise.scale,
          first_step=first_step, start=start, num_shards=jax.process_count(),
          shard=jax.process_index(), crop=crop)
      calls = ((i, i + 1, batch) for i, batch in zip(range(start, steps_per_epoch), batches))

    for begin, end, batch in calls:
      if batch is None:
        state, outputs = steps.device_train_steps(
            state, train_images, perm, jnp.int32(begin), num_steps=end - begin,
            batch_size=config.batch_size, seed=config.seed, loc=config.noise.loc,
            scale=config.noise.scale, loss_kind=config.loss, sharding=shard, unroll=unroll,
            weights=weights, warmup_steps=config.loss_warmup_steps, crop=crop,
            channels=image_shape[2] if crop else 1)
      else:
        noisy, clean = (parallel.from_local_batch(x, mesh) for x in batch)
        state, out = train_step_jit(state, noisy, clean, config.loss, config.seed, weights,
                                    config.loss_warmup_steps)
        outputs = jax.tree.map(lambda v: v[None], out)
      settle()  # the previous call: the host stays one call ahead of the device
      pending = (outputs, first_step + end)
      step = first_step + end
      # At the epoch's end, the evaluation and its checkpoint below come first: a stop
      # that skipped them would lose the epoch's metrics row (the resume starts the next).
      if ((every and step % every == 0) or stop.signum) and end < steps_per_epoch:
        settle()
        _check_finite(state, epoch)
        with _writing_checkpoints(workdir):
          checkpoint.save(manager, state, {
              "epoch_loss_sum": loss_sum,
              **({"epoch_term_sums": term_sums} if term_sums else {})})
        if stop.signum:
          with _writing_checkpoints(workdir):
            checkpoint.wait(manager)
          bar.close()
          raise Interrupted(stop.signum, step)
    settle()
    seconds = time.perf_counter() - t0
    bar.close()
    train_loss = loss_sum / steps_per_epoch

    _check_finite(state, epoch)  # before its metrics are logged and it is saved
    val, shown = evaluate(state, eval_images, config, mesh, sets)
    terms = {f"train_{k}": v / steps_per_epoch for k, v in sorted(term_sums.items())}
    objectives.add_elbo(terms, "train_", config.loss)
    row = {"epoch": epoch + 1, "step": int(state.step), "train_loss": train_loss, **terms,
           **val, "images_per_sec": (steps_per_epoch - start) * config.batch_size / seconds,
           "seconds": seconds}
    history.append(row)
    # A full disk stops the run before this epoch's checkpoint: the rerun resumes from the
    # last one, and logs this epoch again (metrics.jsonl is truncated to that step).
    if main:
      rows = _grid_rows(shown, config.noise.scale > 0)
      with writing("images/reconstructions.png", workdir):
        plots.save_grid(os.path.join(workdir, "images", "reconstructions.png"), rows)
      log.write(row, np.concatenate([np.concatenate(list(im), axis=1) for _, im in rows], 0))
      with writing("images/loss.png", workdir):
        plots.save_loss_curve(os.path.join(workdir, "images", "loss.png"), history,
                              config.loss)
    with _writing_checkpoints(workdir):
      checkpoint.save(manager, state, {"epoch_loss_sum": 0.0})
      if jax.default_backend() == "cpu":
        # The CPU runs the steps too: a write left running in the background competes with
        # the next epoch (dense median epoch 0.47 -> 0.43 s, six alternating runs); an
        # accelerator's steps overlap it for free.
        checkpoint.wait(manager)
    elbo = f"val_elbo {val['val_elbo']:.2f} nats " if "val_elbo" in val else ""
    say(f"epoch {epoch + 1}/{config.num_epochs}: train_loss {train_loss:.4f} "
        f"val_loss {val['val_loss']:.4f} {elbo}val_psnr {val['val_psnr']:.2f} dB "
        f"{row['images_per_sec']:.0f} img/s {seconds:.1f}s")
    if stop.signum and epoch + 1 < config.num_epochs:  # after the last epoch: done anyway
      with _writing_checkpoints(workdir):
        checkpoint.wait(manager)
      raise Interrupted(stop.signum, int(state.step))
  return state
