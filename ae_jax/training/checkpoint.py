"""Orbax checkpoints of a run: `encoder`, `decoder` (each the variables dict its module's
`apply` takes), `state` (the whole TrainState, for resuming) and `progress` (JSON: the
running train-loss sum of the current epoch, so a resumed epoch logs the same numbers).

The restore helpers read WORKDIR/config.json to rebuild the module, and restore only the
item they need: `restore_encoder` never builds or reads the decoder, and vice versa.
"""
from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import os
import shutil
import sys
import threading
import time
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from ae_jax import models
from ae_jax.core.errors import UserError, describe, disk_errno
from ae_jax.training.workdir import checkpoint_dir, checkpoint_steps, read_run_config

ITEMS = ("encoder", "decoder", "state", "progress")


class DamagedCheckpoint(UserError):
  """A checkpoint item or its metadata cannot be read; `what` says which, without advice."""

  def __init__(self, what: str, advice: str):
    super().__init__(f"{what}: {advice}")
    self.what = what


class _DiskRefusalLogs(logging.Filter):
  """Drops orbax's log records of a save the disk refused: one per thread of the save, each
  with its traceback (~700 lines for a full disk). The error itself still reaches the
  caller, who names it in one line (`errors.writing`)."""

  refused = False  # set once a save failed on the disk: orbax's later records go too

  def filter(self, record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    if disk_errno(Exception(record.getMessage())) or (error is not None and disk_errno(error)):
      self.refused = True
      return False
    # After a refusal, orbax's threads that outlive the failed save report their own end
    # ('cannot schedule new futures after shutdown', as the process exits): not news.
    return not (self.refused and "orbax" in record.pathname)


_DISK_REFUSAL_LOGS = _DiskRefusalLogs()


def make_manager(workdir: str, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
  # Once each (filters are a set). asyncio's logger too: a save's write tasks that fail after
  # the first are reported by it ('Task exception was never retrieved', with a traceback)
  # when they are collected, which may be after the one-line error was printed.
  for name in ("absl", "asyncio"):
    logging.getLogger(name).addFilter(_DISK_REFUSAL_LOGS)
  # Orbax writes each step to a temporary folder and renames it when complete; folders
  # left by a killed save (or a full disk's) are removed on the next start.
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         cleanup_tmp_directories=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEMS)


def save(manager: ocp.CheckpointManager, state, progress: dict | None = None) -> None:
  """Saves `state` at `state.step` (asynchronously: call `wait`). The error of an earlier
  save that failed may surface here."""
  params = state.params
  with _whole_failures():
    manager.save(int(state.step), args=ocp.args.Composite(
        encoder=ocp.args.StandardSave({"params": params["encoder"]}),
        decoder=ocp.args.StandardSave({"params": params["decoder"]}),
        state=ocp.args.StandardSave(state),
        progress=ocp.args.JsonSave(progress or {})))


def wait(manager: ocp.CheckpointManager) -> None:
  """Waits for the save in progress; raises its error if it failed."""
  with _whole_failures():
    manager.wait_until_finished()


@contextlib.contextmanager
def _whole_failures(timeout: float = 60.0):
  """Orbax raises a save's first error while the save's other threads still write (each
  to fail on a full disk too): wait for them before the error goes on, or the process
  ends under them and each prints a traceback."""
  try:
    yield
  except Exception as e:
    if disk_errno(e):
      _DISK_REFUSAL_LOGS.refused = True
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
      if thread is not threading.current_thread() and \
          type(thread).__module__.startswith("orbax."):
        thread.join(max(0.0, deadline - time.monotonic()))
    raise


def restore_state(manager: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """The full TrainState at `step` (default: the latest), shaped like `abstract_state`."""
  step = manager.latest_step() if step is None else step
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state)))
  return restored["state"]


def restore_latest_good(manager: ocp.CheckpointManager, workdir: str, abstract_state):
  """(state, progress) of the newest readable step, or None when there is no checkpoint.

  A step that fails to restore (truncated or deleted files, in any of its items: the
  encoder and decoder, which the tools read, must hold the state's parameters) is never
  used: it is moved to WORKDIR/damaged_checkpoints/ with a warning and the previous step
  is tried. When no step can be read, nothing is moved and `UserError` says how to start
  over.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  halves = {half: {"params": abstract_state.params[half]} for half in ("encoder", "decoder")}
  damaged, found = [], None
  with _failed_reads_quiet():
    for step in steps:
      restored, error = _try(lambda: manager.restore(step, args=ocp.args.Composite(  # pylint: disable=cell-var-from-loop
          state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore(),
          **{half: ocp.args.StandardRestore(a) for half, a in halves.items()})))
      if error is None and int(restored["state"].step) != step:
        error = f"it holds step {int(restored['state'].step)}"
      if error is None and not all(_same(restored[half]["params"],
                                         restored["state"].params[half]) for half in halves):
        error = "its encoder or decoder differs from its state's parameters"
      if error is not None:
        print(f"warning: checkpoint step {step} cannot be restored ({error})", file=sys.stderr)
        damaged.append(step)
        continue
      found = restored
      break
  if found is not None:
    _move_aside(manager, workdir, damaged)
    return found["state"], dict(found["progress"] or {})
  if steps:
    raise UserError(f"no checkpoint in {checkpoint_dir(workdir)} can be read (steps "
                    f"{steps} are damaged): start over with --restart, which moves this "
                    "run aside")
  return None


def _same(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _try(restore):
  """(restore(), None), or (None, the error in one line) if it raised. The exception is
  dropped here, not carried up: it holds the failed read's unfinished coroutines, which
  are collected inside `_failed_reads_quiet`, not when the process exits."""
  try:
    return restore(), None
  except Exception as e:  # pylint: disable=broad-except  (truncated or deleted files)
    _FAILED_READS.append(describe(e))
    return None, describe(e)


_FAILED_READS: list[str] = []


def _is_failed_read_noise(unraisable) -> bool:
  """What orbax's reads of a damaged checkpoint leave behind: the coroutines of the other
  reads, failing as they are collected, and TensorStore's callbacks into the closed event
  loop of the failed restore ('RuntimeError: Event loop is closed', object None)."""
  return inspect.iscoroutine(unraisable.object) or (
      unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed")


class _FailedReadLogs(logging.Filter):
  """Drops asyncio's 'Task exception was never retrieved' records during a restore and
  once one failed: orbax's tasks reading the other arrays of a damaged checkpoint fail
  too, and asyncio logs each (with its orbax and TensorStore traceback: 76 lines once)
  when it is collected, inside the restore or after the one-line error. Anything else
  asyncio logs passes."""

  restoring = 0  # restores in progress (`_failed_reads_quiet`)

  def filter(self, record: logging.LogRecord) -> bool:
    return not ((self.restoring or _FAILED_READS)
                and "exception was never retrieved" in record.getMessage())


_FAILED_READ_LOGS = _FailedReadLogs()


def _quiet_unraisable_hook(previous):
  def hook(unraisable):
    if not _is_failed_read_noise(unraisable):
      previous(unraisable)
  hook.ae_jax_quiet = True
  return hook


@contextlib.contextmanager
def _failed_reads_quiet():
  """When one array of a damaged checkpoint fails to read, orbax leaves the reads of the
  others running; as they end, Python reports each one's failure as 'unraisable', and
  asyncio logs each failed task ('Task exception was never retrieved'), each with its
  traceback (dozens of lines that bury the one-line error), some of them after the
  restore has returned. From here on, those are not reported; anything else unraisable
  or logged is, as usual. After a failed read, the reads still running get a moment to
  end here, and the collector frees their coroutines; a restore that read everything
  skips that full collection (~0.3 s in a process that has loaded TensorFlow)."""
  if not getattr(sys.unraisablehook, "ae_jax_quiet", False):
    sys.unraisablehook = _quiet_unraisable_hook(sys.unraisablehook)
  logging.getLogger("asyncio").addFilter(_FAILED_READ_LOGS)  # once: filters are a set
  failed = len(_FAILED_READS)
  _FAILED_READ_LOGS.restoring += 1
  raised = False
  try:
    yield
  except BaseException:
    raised = True
    raise
  finally:
    try:
      if len(_FAILED_READS) > failed:
        time.sleep(0.2)
      if raised or len(_FAILED_READS) > failed:
        with warnings.catch_warnings():  # the reads' coroutines, collected unawaited
          warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
          gc.collect()
    finally:
      _FAILED_READ_LOGS.restoring -= 1


def set_aside_diverged(manager: ocp.CheckpointManager, workdir: str, first_step: int) -> None:
  """Moves the checkpoints from `first_step` on to WORKDIR/damaged_checkpoints/: the loss
  became non-finite right after `first_step`, so its parameters are not a state to resume
  from (finite, but already diverged)."""
  manager.wait_until_finished()
  _move_aside(manager, workdir, [s for s in manager.all_steps() if s >= first_step],
              "led to a non-finite loss")


def _move_aside(manager: ocp.CheckpointManager, workdir: str, steps: list[int],
                why: str = "is damaged") -> None:
  if not steps or jax.process_index() != 0:
    return
  target = os.path.join(workdir, "damaged_checkpoints")
  os.makedirs(target, exist_ok=True)
  for step in steps:
    dest = os.path.join(target, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(os.path.join(checkpoint_dir(workdir), str(step)), dest)
    print(f"warning: checkpoint step {step} {why}; moved to {dest}, resuming from an "
          "earlier step", file=sys.stderr)
  manager.reload()


# ----------------------------------------------------------------- library helpers

def checkpoint_id(workdir: str, step: int) -> int:
  """When orbax began writing checkpoint `step` of a run (ns since the epoch, from the
  step's metadata): with the step, it tells this checkpoint from one of the same step
  written by another run, or by this workdir before a --restart. Copies keep it."""
  # The step's own metadata file only: a damaged item (the optimizer state, say) must not
  # stop the tools that read another (decode needs only the decoder).
  try:
    return int(ocp.metadata.get_step_metadata(
        os.path.join(checkpoint_dir(workdir), str(step))).init_timestamp_nsecs)
  except Exception as e:  # pylint: disable=broad-except  (a damaged or missing metadata file)
    raise DamagedCheckpoint(f"the metadata of checkpoint step {step} in {workdir} cannot be "
                            f"read ({describe(e)})", _damaged_advice(workdir, step)) from None


def _abstract_params(module: nn.Module, example: jax.Array) -> dict:
  """{'params': shapes} of `module` (what an item holds: not the terms a module sows)."""
  def init(x):
    return {"params": module.init(models.shape_rngs(), x)["params"]}
  return jax.eval_shape(init, example)


def _restore_item(workdir: str, item: str, module: nn.Module, example: jax.Array,
                  step: int | None) -> dict:
  # Restore onto this process's first device, whatever sharding the run trained with.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          _abstract_params(module, example))
  if not checkpoint_steps(workdir):  # checked first: a read must not create folders
    raise UserError(f"{workdir} has no checkpoint yet: train it first "
                    "(python launch.py --workdir ...)")
  options = ocp.CheckpointManagerOptions(create=False)
  with ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                             item_names=ITEMS) as manager:
    step = manager.latest_step() if step is None else step
    with _failed_reads_quiet():
      restored, error = _try(lambda: manager.restore(step, args=ocp.args.Composite(
          **{item: ocp.args.StandardRestore(abstract)})))
  if error is not None:
    raise DamagedCheckpoint(f"the {item} of checkpoint step {step} in {workdir} cannot be "
                            f"read ({error})", _damaged_advice(workdir, step))
  return restored[item]


def _damaged_advice(workdir: str, step: int) -> str:
  steps = checkpoint_steps(workdir)
  others = [s for s in steps if s != step]
  if not others:
    return "train the run again"
  if step == max(steps):  # a resume tries the newest step first, and sets it aside
    return (f"rerun its training command (launch.py with --workdir {workdir}): it moves "
            f"damaged steps aside and retrains them (it also keeps steps {others})")
  return f"use another of its steps ({others})"  # older steps are not checked on resume


def _run_model(workdir: str) -> tuple[models.Autoencoder, dict]:
  cfg = read_run_config(workdir)
  return models.from_config(cfg, cfg["image_shape"]), cfg


def restore_encoder(workdir: str, step: int | None = None) -> tuple[nn.Module, dict]:
  """(encoder module, variables) of a run: `encoder.apply(variables, images)` gives codes."""
  model, cfg = _run_model(workdir)
  example = jnp.zeros((1, *cfg["image_shape"]), jnp.float32)
  return model.encoder, _restore_item(workdir, "encoder", model.encoder, example, step)


def restore_decoder(workdir: str, step: int | None = None) -> tuple[nn.Module, dict]:
  """(decoder module, variables) of a run: `sigmoid(decoder.apply(variables, codes))` gives
  images. Only the decoder is read; the encoder's code shape is traced, not computed."""
  model, cfg = _run_model(workdir)
  example = jnp.zeros((1, *models.code_shape(model.encoder, cfg["image_shape"])), jnp.float32)
  return model.decoder, _restore_item(workdir, "decoder", model.decoder, example, step)


def restore_autoencoder(workdir: str, step: int | None = None) -> tuple[models.Autoencoder, dict]:
  """(Autoencoder, variables) of a run, for `.apply(v, x, method='encode'|'decode'|'reconstruct')`."""
  encoder, enc_vars = restore_encoder(workdir, step)
  decoder, dec_vars = restore_decoder(workdir, step)
  variables = {"params": {"encoder": enc_vars["params"], "decoder": dec_vars["params"]}}
  return models.Autoencoder(encoder=encoder, decoder=decoder), variables
