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

from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.core import metrics, xla_flags
from ae_jax.training import objectives


# XLA options for code that runs once (initialization): a lighter backend optimization and,
# where measured, XLA:CPU's older loop emitters (ae_jax/core/xla_flags.py).
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
  # A model that samples draws from 'sample' at init too; `rng` alone is the 'params' key.
  rngs = {"params": rng, "sample": jax.random.fold_in(rng, objectives.SAMPLE_STREAM)}
  params = model.init(rngs, jnp.zeros((1, *image_shape)))["params"]
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optax.adam(config.learning_rate))


def initial_state(model: models.Autoencoder, config: ml_collections.ConfigDict, image_shape,
                  out_shardings=None) -> TrainState:
  """`create_train_state` from key(config.seed), jit-compiled with QUICK_COMPILE: XLA's
  backend optimization level 1 compiles the init ~6x faster than the default (conv model:
  6.2 -> ~1 s, benchmarks/init_compile.py, removed, read it at commit 83c9b83; the
  random-number kernels are the cost), the older CPU loop emitters ~0.2 s faster still,
  with bit-identical parameters (tests/test_train.py)."""
  init = jax.jit(lambda rng: create_train_state(model, config, image_shape, rng),
                 out_shardings=out_shardings, compiler_options=QUICK_COMPILE)
  return init(jax.random.key(config.seed))


def train_step(state: TrainState, noisy: jax.Array, clean: jax.Array, loss_kind: str,
               rng: jax.Array, weights: tuple = (), warmup_steps: int = 0
               ) -> tuple[TrainState, dict]:
  """One Adam step on the mean objective of decoder(encoder(noisy)) against `clean`: the
  reconstruction loss plus the terms the model reports, weighted (ae_jax/training/objectives.py),
  the weights ramped up from 0 over the first `warmup_steps` steps (0: no warm-up); then
  the parameter deltas the model wrote, if any, are added (objectives.DELTAS).

  Returns the new state and this step's `loss` (the objective) and the mean of every
  reported term and metric, by name (and of the `reconstruction` loss, for a model that
  reports terms). `rng` is the key of the model's sampling.
  The optimizer's operations carry the name scope `optimizer` (and device_train_steps'
  batch gather and noise `batch`), so profiles can tell them apart from the model's
  forward (`jvp(...)`) and backward (`transpose(jvp(...))`) passes:
  benchmarks/profile_step.py.
  """
  def loss_fn(params):
    logits, terms, reported, deltas = objectives.apply_for_training(state.apply_fn, params,
                                                                    noisy, rng)
    rec = metrics.reconstruction_loss(loss_kind, logits, clean)
    if not terms:  # the lecture's models: the loss as it always was
      return rec.mean(), ({k: v.mean() for k, v in reported.items()}, deltas)
    means = {k: v.mean() for k, v in {**terms, **reported, "reconstruction": rec}.items()}
    ramp = objectives.warmup(state.step, warmup_steps)
    return objectives.total(rec, terms, weights, ramp).mean(), (means, deltas)

  (loss, (means, deltas)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  with jax.named_scope("optimizer"):
    state = state.apply_gradients(grads=grads)
    # Updates outside the gradient (a VQ-VAE's EMA codebook), after the optimizer's.
    if deltas:
      state = state.replace(params=objectives.add_deltas(state.params, deltas))
    return state, {"loss": loss, **means}


def sample_key(seed: int | jax.Array, step: jax.Array) -> jax.Array:
  """The key of a model's sampling at a train step: a function of (seed, step) alone,
  so a resumed run draws what an unbroken one draws."""
  return jax.random.fold_in(noise_key(seed, objectives.SAMPLE_STREAM), step)


@functools.partial(jax.jit, static_argnames=("loss_kind", "weights", "warmup_steps"),
                   donate_argnums=0)
def train_step_jit(state, noisy, clean, loss_kind, seed=0, weights=(), warmup_steps=0):
  return train_step(state, noisy, clean, loss_kind, sample_key(seed, state.step), weights,
                    warmup_steps)


def noise_key(seed: int, stream: int) -> jax.Array:
  """The root key of a noise stream (1: training, 2: evaluation) of a run."""
  return jax.random.fold_in(jax.random.key(seed), stream)


# `seed` is traced, not static: one executable serves every seed, and a persistent
# compilation cache filled by one seed's run serves the next (the noise key is derived in
# the step, a few integer operations).
CROP_STREAM = 5  # the fold of key(seed) that training crops draw from (noise: 1 and 2)


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "loc", "scale",
                                             "loss_kind", "sharding", "unroll", "weights",
                                             "warmup_steps", "crop", "channels"),
                   donate_argnums=0)
def device_train_steps(state: TrainState, images_u8, perm: jax.Array,
                       first: jax.Array, *, num_steps: int, batch_size: int,
                       seed: int | jax.Array, loc: float, scale: float, loss_kind: str,
                       sharding: NamedSharding | None = None,
                       unroll: int = 1, weights: tuple = (),
                       warmup_steps: int = 0, crop: int = 0,
                       channels: int = 1) -> tuple[TrainState, dict]:
  """`num_steps` train steps on batches first, first+1, ... of the epoch order `perm`.

  Batches are gathered from the resident dataset and noised (key folded with the global
  step) inside jit; more than one step runs in a `lax.scan`, `unroll` steps per loop
  iteration (the same steps in the same order: the same numbers). With `crop`, the images
  are `data.flat_images`' (pixels, offsets, sizes) of `channels` channels and each batch
  image a random crop x crop window, drawn from (seed, step) as the noise is. Returns the per-step `loss` and
  reported terms (arrays of `num_steps`).
  """
  def body(state, i):
    with jax.named_scope("batch"):
      if crop:
        pixels, offsets, sizes = images_u8
        key = jax.random.fold_in(noise_key(seed, CROP_STREAM), state.step)
        clean = data.device_crops(pixels, offsets, sizes, perm, i, batch_size, crop,
                                  channels, key)
      else:
        clean = data.device_batch(images_u8, perm, i, batch_size)
      if sharding is not None:
        clean = jax.lax.with_sharding_constraint(clean, sharding)
      key = jax.random.fold_in(noise_key(seed, 1), state.step)
      noisy = data.add_noise(key, clean, loc, scale)
    return train_step(state, noisy, clean, loss_kind, sample_key(seed, state.step), weights,
                      warmup_steps)

  if num_steps == 1:
    state, out = body(state, first)
    return state, jax.tree.map(lambda v: v[None], out)
  return jax.lax.scan(body, state, first + jnp.arange(num_steps), unroll=unroll)


@functools.partial(jax.jit, static_argnames=("loss_kind", "loc", "scale", "num_shown",
                                             "shown_sharding", "weights", "warmup_steps",
                                             "padded"))
def eval_step(state: TrainState, clean, mask, batch_index, *, loss_kind: str,
              seed: int | jax.Array, loc: float, scale: float, num_shown: int,
              shown_sharding: NamedSharding | None = None,
              weights: tuple = (), warmup_steps: int = 0,
              padded: tuple[int, int] | None = None) -> tuple[dict, dict]:
  """Masked sums of the eval metrics over a batch, and its first images (original, noisy,
  restored). The noise (and a model's sampling) is fixed by (seed, batch), so every epoch
  sees the same inputs. `val_loss` is the objective (the reconstruction loss for a model
  reporting no terms; the weights as the train step at `state.step` has them); each
  reported term and metric is `val_<name>`. `padded` (height, width): the model's input
  is the noisy batch padded at the bottom and right to that size (its edge pixels
  repeated) and its output is cropped back, for a model whose strides need a multiple of
  some size (`models.registry.size_multiple`); the metrics see the images' own pixels."""
  noisy = data.add_noise(jax.random.fold_in(noise_key(seed, 2), batch_index), clean, loc, scale)
  rng = jax.random.fold_in(noise_key(seed, objectives.SAMPLE_STREAM + 1), batch_index)
  x = noisy
  if padded is not None:
    h, w = clean.shape[1:3]
    x = jnp.pad(noisy, ((0, 0), (0, padded[0] - h), (0, padded[1] - w), (0, 0)), mode="edge")
  logits, terms, reported = objectives.apply(state.apply_fn, state.params, x, rng)
  if padded is not None:
    logits = logits[:, :h, :w]
  restored = jax.nn.sigmoid(logits)
  rec = metrics.reconstruction_loss(loss_kind, logits, clean)
  per_image = {
      "val_loss": objectives.total(rec, terms, weights,
                                   objectives.warmup(state.step, warmup_steps))
                  if terms else rec,
      "val_bce": metrics.bce_from_logits(logits, clean),
      "val_mse": metrics.mse(restored, clean),
      "val_psnr": metrics.psnr(restored, clean),
      "val_ssim": metrics.ssim(restored, clean),
  }
  per_image.update({f"val_{k}": v for k, v in {**terms, **reported}.items()})
  if terms:
    per_image["val_reconstruction"] = rec
  if scale > 0:  # denoising: how much the model improves on its noisy input
    per_image["val_noisy_psnr"] = metrics.psnr(noisy, clean)
  shown = {"original": clean[:num_shown], "noisy": noisy[:num_shown],
           "restored": restored[:num_shown]}
  if shown_sharding is not None:
    shown = jax.lax.with_sharding_constraint(shown, shown_sharding)
  return {k: (v * mask).sum() for k, v in per_image.items()}, shown
