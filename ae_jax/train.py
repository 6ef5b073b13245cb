"""Training and evaluation: TrainState, pure jitted steps, and `train_and_evaluate`."""
from __future__ import annotations

import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from flax.training import train_state

from ae_jax import checkpoint, config_lib, data, metrics, models, plots, workdir as workdir_lib
from ae_jax.errors import UserError


class TrainState(train_state.TrainState):
  """Flax's TrainState: step, params, opt_state (apply_fn and tx are static)."""


def create_train_state(model: models.Autoencoder, config: ml_collections.ConfigDict,
                       image_shape) -> TrainState:
  params = model.init(jax.random.key(config.seed), jnp.zeros((1, *image_shape)))["params"]
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optax.adam(config.learning_rate))


# ----------------------------------------------------------------------------- steps

def train_step(state: TrainState, noisy: jax.Array, clean: jax.Array,
               loss_kind: str) -> tuple[TrainState, jax.Array]:
  """One Adam step on the mean loss of decoder(encoder(noisy)) against `clean`."""
  def loss_fn(params):
    logits = state.apply_fn({"params": params}, noisy)
    return metrics.reconstruction_loss(loss_kind, logits, clean).mean()

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), loss


@functools.partial(jax.jit, static_argnames="loss_kind", donate_argnums=0)
def train_step_jit(state, noisy, clean, loss_kind):
  return train_step(state, noisy, clean, loss_kind)


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "loc", "scale",
                                             "loss_kind"), donate_argnums=0)
def device_train_steps(state: TrainState, images_u8: jax.Array, perm: jax.Array,
                       first: jax.Array, noise_key: jax.Array, *, num_steps: int,
                       batch_size: int, loc: float, scale: float,
                       loss_kind: str) -> tuple[TrainState, jax.Array]:
  """`num_steps` train steps on batches first, first+1, ... of the epoch order `perm`.

  Batches are gathered from the resident dataset and noised (key folded with the global
  step) inside jit; more than one step runs in a `lax.scan`. Returns the per-step losses.
  """
  def body(state, i):
    clean = data.device_batch(images_u8, perm, i, batch_size)
    noisy = data.add_noise(jax.random.fold_in(noise_key, state.step), clean, loc, scale)
    return train_step(state, noisy, clean, loss_kind)

  if num_steps == 1:
    state, loss = body(state, first)
    return state, loss[None]
  return jax.lax.scan(body, state, first + jnp.arange(num_steps))


@functools.partial(jax.jit, static_argnames="loss_kind")
def eval_step(state: TrainState, noisy, clean, mask, loss_kind: str) -> dict:
  """Masked sums of loss, MSE and PSNR over a batch, and the restored images."""
  logits = state.apply_fn({"params": state.params}, noisy)
  restored = jax.nn.sigmoid(logits)
  sums = {
      "val_loss": metrics.reconstruction_loss(loss_kind, logits, clean),
      "val_mse": metrics.mse(restored, clean),
      "val_psnr": metrics.psnr(restored, clean),
  }
  return {k: (v * mask).sum() for k, v in sums.items()}, restored


def evaluate(state, eval_images, config) -> tuple[dict, dict]:
  """Metrics over the whole eval split, and (originals, noisy, restored) of its first images."""
  totals, shown = None, None
  for noisy, clean, mask in data.eval_batches(eval_images, batch_size=config.eval_batch_size,
                                              seed=config.seed, loc=config.noise.loc,
                                              scale=config.noise.scale):
    sums, restored = eval_step(state, noisy, clean, mask, config.loss)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if shown is None:
      k = config.num_images
      shown = {"original": clean[:k], "noisy": noisy[:k], "restored": restored[:k]}
  n = len(eval_images)
  return {k: float(v) / n for k, v in jax.device_get(totals).items()}, jax.device_get(shown)


# ------------------------------------------------------------------------ the loop

def _choose_pipeline(config, n_train: int, image_shape) -> str:
  if config.input_pipeline != "auto":
    return config.input_pipeline
  size_mb = n_train * int(np.prod(image_shape)) / 2**20
  return "device" if size_mb <= config.device_data_mb else "stream"


def _steps_per_call(config) -> int:
  if config.steps_per_call:
    return config.steps_per_call
  # Measured on XLA:CPU (benchmarks/pipeline.py): the dense step gains from a scan over
  # many steps, the conv step runs slower inside a scan than one jit call per batch.
  return 32 if config.model == "dense" else 1


def _grid_rows(shown: dict, noisy: bool) -> list[tuple[str, np.ndarray]]:
  rows = [("original", shown["original"])]
  if noisy:
    rows.append(("noisy", shown["noisy"]))
  return rows + [("restored", shown["restored"])]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains the autoencoder `config` describes, evaluating and checkpointing each epoch.

  Args:
    config: an experiment config (see configs/default.py for its fields).
    workdir: where config.json, metrics.jsonl, checkpoints/, images/ and tensorboard/
      go. A workdir holding a checkpoint of the same config is resumed; one holding
      another config is refused.

  Returns:
    The final TrainState.

  Raises:
    UserError: a mistake the user can fix (bad config, missing data, unusable workdir).
  """
  config_lib.validate(config)
  builder = data.get_builder(config.dataset, config.data_dir, config.idx_dir)
  image_shape = data.image_shape(builder)
  if config.model == "conv" and image_shape != models.IMAGE_SHAPE:
    raise UserError(f"the conv model takes 28x28x1 images but {config.dataset} has "
                    f"{image_shape}: use --config.model=dense or a 28x28x1 dataset")
  n_train = data.num_examples(builder, config.train_split)
  if config.batch_size > n_train:
    raise UserError(f"batch_size {config.batch_size} is larger than the {n_train} "
                    f"examples of {config.train_split}: lower --config.batch_size")
  steps_per_epoch = min(config.steps_per_epoch or n_train // config.batch_size,
                        n_train // config.batch_size)
  num_steps = steps_per_epoch * config.num_epochs
  eval_images = data.load_images(builder, config.eval_split, config.eval_examples)

  workdir_lib.prepare(workdir, workdir_lib.config_record(config, image_shape))
  log = workdir_lib.MetricsLog(workdir)
  manager = checkpoint.make_manager(workdir, config.checkpoints_to_keep)

  model = models.make_autoencoder(config.model, config.latent_dim, image_shape)
  state = create_train_state(model, config, image_shape)
  if manager.latest_step() is not None:
    state = checkpoint.restore_state(manager, state)
    print(f"Resuming {workdir} from step {int(state.step)}.", file=sys.stderr)
  history = log.truncate_after(int(state.step))

  pipeline = _choose_pipeline(config, n_train, image_shape)
  if pipeline == "device":
    train_images = jax.device_put(data.load_images(builder, config.train_split))
  noise_key = jax.random.fold_in(jax.random.key(config.seed), 1)
  chunk = _steps_per_call(config)
  loss_plot = os.path.join(workdir, "images", "loss.png")

  start_epoch = int(state.step) // steps_per_epoch
  for epoch in range(start_epoch, config.num_epochs):
    first_step = epoch * steps_per_epoch
    start = int(state.step) - first_step
    bar = tqdm.tqdm(total=steps_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{config.num_epochs}",
                    unit="step", disable=not config.progress_bar, leave=False, file=sys.stderr)
    t0 = time.perf_counter()
    losses, pending = [], None

    def account(step_losses, n_steps):
      # Waits for the previous call only: the host stays one call ahead of the device.
      nonlocal pending
      if pending is not None:
        pending[0].block_until_ready()
        bar.update(pending[1])
        bar.set_postfix(img_s=f"{bar.n * config.batch_size / (time.perf_counter() - t0):.0f}",
                        refresh=False)
      pending = (step_losses, n_steps)
      losses.append(step_losses)

    if pipeline == "device":
      perm = data.epoch_permutation(config.seed, epoch, n_train)
      for i in range(start, steps_per_epoch, chunk):
        n = min(chunk, steps_per_epoch - i)
        state, step_losses = device_train_steps(
            state, train_images, perm, jnp.int32(i), noise_key, num_steps=n,
            batch_size=config.batch_size, loc=config.noise.loc, scale=config.noise.scale,
            loss_kind=config.loss)
        account(step_losses, n)
    else:
      for noisy, clean in data.stream_epoch(
          builder, config.train_split, batch_size=config.batch_size, steps=steps_per_epoch,
          epoch=epoch, seed=config.seed, loc=config.noise.loc, scale=config.noise.scale,
          first_step=first_step, start=start):
        state, loss = train_step_jit(state, noisy, clean, config.loss)
        account(loss[None], 1)
    train_loss = float(jnp.concatenate(losses).mean())
    seconds = time.perf_counter() - t0
    bar.close()
    if not np.isfinite(train_loss):
      raise UserError(f"the loss became {train_loss} in epoch {epoch + 1}: lower "
                      "--config.learning_rate (the last good checkpoint is kept)")

    val, shown = evaluate(state, eval_images, config)
    row = {"epoch": epoch + 1, "step": int(state.step), "train_loss": train_loss, **val,
           "images_per_sec": (steps_per_epoch - start) * config.batch_size / seconds,
           "seconds": seconds}
    rows = _grid_rows(shown, config.noise.scale > 0)
    plots.save_grid(os.path.join(workdir, "images", "reconstructions.png"), rows)
    log.write(row, np.concatenate([np.concatenate(list(im), axis=1) for _, im in rows], axis=0))
    history.append(row)
    plots.save_loss_curve(loss_plot, history, config.loss)
    checkpoint.save(manager, state)
    print(f"epoch {epoch + 1}/{config.num_epochs}: train_loss {train_loss:.4f} "
          f"val_loss {val['val_loss']:.4f} val_psnr {val['val_psnr']:.2f} dB "
          f"{row['images_per_sec']:.0f} img/s {seconds:.1f}s", file=sys.stderr)

  manager.wait_until_finished()
  manager.close()
  log.close()
  return state
