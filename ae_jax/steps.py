"""TrainState and the pure, jit-compiled train and eval steps.

Batches arrive sharded along the mesh's `data` axis (`device_train_steps` gathers them in
jit and constrains them to its static `sharding`), parameters stay replicated, and `jit`
partitions the work over however many devices the mesh has.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state
from jax.sharding import NamedSharding

from ae_jax import data, metrics, models, xla_flags


# XLA options for code that runs once (initialization): a lighter backend optimization and,
# where measured, XLA:CPU's older loop emitters (ae_jax/xla_flags.py).
QUICK_COMPILE = {"xla_backend_optimization_level": 1, **xla_flags.quick_compile_cpu_options()}


class TrainState(train_state.TrainState):
  """Flax's TrainState: step, params, opt_state (apply_fn and tx are static)."""


def create_train_state(model: models.Autoencoder, config: ml_collections.ConfigDict,
                       image_shape, rng: jax.Array | None = None) -> TrainState:
  """Initial parameters (from `rng`, default key(config.seed)) and Adam state.

  Under jit, pass `rng` as an argument: with a constant key the whole init is a constant
  and XLA folds the model's forward pass at compile time (the conv model: ~6 s here).
  """
  rng = jax.random.key(config.seed) if rng is None else rng
  params = model.init(rng, jnp.zeros((1, *image_shape)))["params"]
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optax.adam(config.learning_rate))


def initial_state(model: models.Autoencoder, config: ml_collections.ConfigDict, image_shape,
                  out_shardings=None) -> TrainState:
  """`create_train_state` from key(config.seed), jit-compiled with QUICK_COMPILE: XLA's
  backend optimization level 1 compiles the init ~6x faster than the default (conv model:
  6.2 -> ~1 s, benchmarks/init_compile.py; the random-number kernels are the cost), the
  older CPU loop emitters ~0.2 s faster still, with bit-identical parameters
  (tests/test_train.py)."""
  init = jax.jit(lambda rng: create_train_state(model, config, image_shape, rng),
                 out_shardings=out_shardings, compiler_options=QUICK_COMPILE)
  return init(jax.random.key(config.seed))


def train_step(state: TrainState, noisy: jax.Array, clean: jax.Array,
               loss_kind: str) -> tuple[TrainState, jax.Array]:
  """One Adam step on the mean loss of decoder(encoder(noisy)) against `clean`.

  The optimizer's operations carry the name scope `optimizer` (and device_train_steps'
  batch gather and noise `batch`), so profiles can tell them apart from the model's
  forward (`jvp(...)`) and backward (`transpose(jvp(...))`) passes:
  benchmarks/profile_step.py.
  """
  def loss_fn(params):
    logits = state.apply_fn({"params": params}, noisy)
    return metrics.reconstruction_loss(loss_kind, logits, clean).mean()

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  with jax.named_scope("optimizer"):
    return state.apply_gradients(grads=grads), loss


@functools.partial(jax.jit, static_argnames="loss_kind", donate_argnums=0)
def train_step_jit(state, noisy, clean, loss_kind):
  return train_step(state, noisy, clean, loss_kind)


def noise_key(seed: int, stream: int) -> jax.Array:
  """The root key of a noise stream (1: training, 2: evaluation) of a run."""
  return jax.random.fold_in(jax.random.key(seed), stream)


# `seed` is traced, not static: one executable serves every seed, and a persistent
# compilation cache filled by one seed's run serves the next (the noise key is derived in
# the step, a few integer operations).
@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "loc", "scale",
                                             "loss_kind", "sharding", "unroll"),
                   donate_argnums=0)
def device_train_steps(state: TrainState, images_u8: jax.Array, perm: jax.Array,
                       first: jax.Array, *, num_steps: int, batch_size: int,
                       seed: int | jax.Array, loc: float, scale: float, loss_kind: str,
                       sharding: NamedSharding | None = None,
                       unroll: int = 1) -> tuple[TrainState, jax.Array]:
  """`num_steps` train steps on batches first, first+1, ... of the epoch order `perm`.

  Batches are gathered from the resident dataset and noised (key folded with the global
  step) inside jit; more than one step runs in a `lax.scan`, `unroll` steps per loop
  iteration (the same steps in the same order: the same numbers). Returns the per-step
  losses.
  """
  def body(state, i):
    with jax.named_scope("batch"):
      clean = data.device_batch(images_u8, perm, i, batch_size)
      if sharding is not None:
        clean = jax.lax.with_sharding_constraint(clean, sharding)
      key = jax.random.fold_in(noise_key(seed, 1), state.step)
      noisy = data.add_noise(key, clean, loc, scale)
    return train_step(state, noisy, clean, loss_kind)

  if num_steps == 1:
    state, loss = body(state, first)
    return state, loss[None]
  return jax.lax.scan(body, state, first + jnp.arange(num_steps), unroll=unroll)


@functools.partial(jax.jit, static_argnames=("loss_kind", "loc", "scale", "num_shown",
                                             "shown_sharding"))
def eval_step(state: TrainState, clean, mask, batch_index, *, loss_kind: str,
              seed: int | jax.Array, loc: float, scale: float, num_shown: int,
              shown_sharding: NamedSharding | None = None) -> tuple[dict, dict]:
  """Masked sums of the eval metrics over a batch, and its first images (original, noisy,
  restored). The noise is fixed by (seed, batch), so every epoch sees the same inputs."""
  noisy = data.add_noise(jax.random.fold_in(noise_key(seed, 2), batch_index), clean, loc, scale)
  logits = state.apply_fn({"params": state.params}, noisy)
  restored = jax.nn.sigmoid(logits)
  per_image = {
      "val_loss": metrics.reconstruction_loss(loss_kind, logits, clean),
      "val_bce": metrics.bce_from_logits(logits, clean),
      "val_mse": metrics.mse(restored, clean),
      "val_psnr": metrics.psnr(restored, clean),
      "val_ssim": metrics.ssim(restored, clean),
  }
  if scale > 0:  # denoising: how much the model improves on its noisy input
    per_image["val_noisy_psnr"] = metrics.psnr(noisy, clean)
  shown = {"original": clean[:num_shown], "noisy": noisy[:num_shown],
           "restored": restored[:num_shown]}
  if shown_sharding is not None:
    shown = jax.lax.with_sharding_constraint(shown, shown_sharding)
  return {k: (v * mask).sum() for k, v in per_image.items()}, shown
