"""TrainState and the pure, jit-compiled train and eval steps.

Batches arrive sharded along the mesh's `data` axis (`device_train_steps` gathers them in
jit and constrains them to its static `sharding`), parameters stay replicated, and `jit`
partitions the work over however many devices the mesh has.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct
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
  """Flax's TrainState: step, params, opt_state (apply_fn and tx are static), and the
  parameter groups the model declares (static; ae_jax/models/autoencoder.py `ParamGroup`):
  with groups, `tx` is one optimizer per group (optax.multi_transform), opt_state holds
  each one's state, and `train_step` gives each group the gradient of its own loss."""
  groups: tuple = struct.field(pytree_node=False, default=())


def create_train_state(model: models.Autoencoder, config: ml_collections.ConfigDict,
                       image_shape, rng: jax.Array | None = None) -> TrainState:
  """Initial parameters (from `rng`, default key(config.seed)) and Adam state.

  Under jit, pass `rng` as an argument: with a constant key the whole init is a constant
  and XLA folds the model's forward pass at compile time (the conv model: ~6 s here).
  """
  rng = jax.random.key(config.seed) if rng is None else rng
  return _train_state(model, _optimizer_key(config), image_shape, rng)


def _train_state(model: models.Autoencoder, optimizer_key: tuple, image_shape, rng: jax.Array
                 ) -> TrainState:
  # A model that samples draws from 'sample' at init too; `rng` alone is the 'params' key.
  rngs = {"params": rng, "sample": jax.random.fold_in(rng, objectives.SAMPLE_STREAM)}
  params = model.init(rngs, jnp.zeros((1, *image_shape)))["params"]
  groups = models.autoencoder.param_groups(model)
  tx = _transformation(*optimizer_key, groups)
  return TrainState.create(apply_fn=ModelApply(model), params=params, tx=tx, groups=groups)


@dataclasses.dataclass(frozen=True)
class ModelApply:
  """`model.apply`, equal for equal models. The state's apply_fn is static: a bound method
  is equal only to itself, so each new (equal) model made the train and eval steps trace
  again; this one finds them traced."""
  model: models.Autoencoder

  def __call__(self, *args, **kwargs):
    return self.model.apply(*args, **kwargs)


def group_labels(groups: tuple, params) -> dict:
  """A tree like `params` naming each leaf's group: a declared group's name under its path,
  'model' elsewhere."""
  def label(path, _):
    keys = tuple(getattr(k, "key", getattr(k, "name", k)) for k in path)
    for group in groups:
      if keys[:len(group.path)] == tuple(group.path):
        return group.name
    return "model"
  return jax.tree_util.tree_map_with_path(label, params)


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam at config.learning_rate, after the weight decay of config.weight_decay (by half of
  the model: wd * params added to the gradient, as torch's Adam(weight_decay=wd)), the
  gradient first clipped to a global norm of config.grad_clip_norm where one is set
  (torch's clip_grad_norm_, as CompressAI's example trainer), with Adam's ε
  config.adam_eps (optax's and torch's 1e-8 by default)."""
  return _optimizer(*_optimizer_key(config))


def _optimizer_key(config: ml_collections.ConfigDict) -> tuple:
  clip = config.get("grad_clip_norm")
  return float(config.learning_rate), tuple(sorted(
      (half, float(wd)) for half, wd in config.get("weight_decay", {}).items() if wd)), (
          None if clip is None else float(clip)), float(config.get("adam_eps", ADAM_EPS))


ADAM_EPS = 1e-8  # optax.adam's and torch.optim.Adam's default


# One transformation object per setting: the state's `tx` is static, so a second run in
# the same process (a notebook, a sweep, a stopped run resumed, the tests) finds its train
# and eval steps already traced instead of tracing them again for a new, equal optimizer.
@functools.lru_cache(maxsize=None)
def _transformation(learning_rate: float, decays: tuple, clip: float | None, eps: float,
                    groups: tuple) -> optax.GradientTransformation:
  """The optimizer of `create_train_state`: `_optimizer`'s, and with parameter groups one
  Adam per group beside it (optax.multi_transform)."""
  if not groups:
    return _optimizer(learning_rate, decays, clip, eps)
  return optax.multi_transform(
      {"model": _optimizer(learning_rate, decays, clip, eps),
       **{g.name: optax.adam(g.learning_rate or learning_rate, eps=eps) for g in groups}},
      functools.partial(group_labels, groups))


@functools.lru_cache(maxsize=None)
def _optimizer(learning_rate: float, decays: tuple, clip: float | None = None,
               eps: float = ADAM_EPS) -> optax.GradientTransformation:
  adam = optax.adam(learning_rate, eps=eps)
  if decays:
    def only(half):
      return lambda params: {k: jax.tree.map(lambda _: k == half, v) for k, v in params.items()}
    adam = optax.chain(*[optax.add_decayed_weights(wd, mask=only(half)) for half, wd in decays],
                       adam)
  # Unclipped runs keep their optimizer state's structure (and their checkpoints).
  return adam if clip is None else optax.chain(optax.clip_by_global_norm(clip), adam)


def initial_state(model: models.Autoencoder, config: ml_collections.ConfigDict, image_shape,
                  out_shardings=None) -> TrainState:
  """`create_train_state` from key(config.seed), jit-compiled with QUICK_COMPILE: XLA's
  backend optimization level 1 compiles the init ~6x faster than the default (conv model:
  6.2 -> ~1 s, benchmarks/init_compile.py, removed, read it at commit 83c9b83; the
  random-number kernels are the cost), the older CPU loop emitters ~0.2 s faster still,
  with bit-identical parameters (tests/test_train.py)."""
  key = (model, _optimizer_key(config), tuple(image_shape), out_shardings)
  try:
    init = _jitted_init(*key)
  except TypeError:  # an unhashable field in a user's module: traced for this run alone
    init = _jitted_init.__wrapped__(*key)
  return init(jax.random.key(config.seed))


# One jitted init per (model, optimizer, shape, sharding), as the steps: a second equal run
# in the process (a stopped run resumed, a sweep, the tests) does not trace it again.
@functools.lru_cache(maxsize=32)
def _jitted_init(model: models.Autoencoder, optimizer_key: tuple, image_shape: tuple,
                 out_shardings):
  def init(rng):
    return _train_state(model, optimizer_key, image_shape, rng)
  return jax.jit(init, out_shardings=out_shardings, compiler_options=QUICK_COMPILE)


def train_step(state: TrainState, noisy: jax.Array, clean: jax.Array, loss_kind: str,
               rng: jax.Array, weights: tuple = (), warmup_steps: int = 0
               ) -> tuple[TrainState, dict]:
  """One Adam step on the mean objective of decoder(encoder(noisy)) against `clean`: the
  reconstruction loss plus the terms the model reports, weighted (ae_jax/training/objectives.py),
  the weights ramped up from 0 over the first `warmup_steps` steps (0: no warm-up), over
  `weights.importance_samples` draws per image (objectives.Weights); then the parameter
  deltas the model wrote, if any, are added (objectives.DELTAS). A model that declares
  parameter groups (state.groups: an adversarial autoencoder's discriminator) takes one
  step per group, each on its own loss (`_grads_by_group`).

  Returns the new state and this step's `loss` (the objective) and the mean of every
  reported term and metric, by name (and of the `reconstruction` loss, for a model that
  reports terms). `rng` is the key of the model's sampling.
  The optimizer's operations carry the name scope `optimizer` (and device_train_steps'
  batch gather and noise `batch`), so profiles can tell them apart from the model's
  forward (`jvp(...)`) and backward (`transpose(jvp(...))`) passes:
  benchmarks/profile_step.py.
  """
  draws = objectives.as_weights(weights).importance_samples

  def loss_fn(params, drop=None):
    logits, terms, reported, deltas = objectives.apply_for_training(state.apply_fn, params,
                                                                    noisy, rng, draws=draws)
    rec = objectives.reconstruction(loss_kind, logits, clean)
    if not terms and draws == 1:  # the lecture's models: the loss as it always was
      return rec.mean(), ({k: v.mean() for k, v in reported.items()}, deltas)
    means = {k: v.mean() for k, v in {**terms, **reported, "reconstruction": rec}.items()}
    ramp = objectives.warmup(state.step, warmup_steps)
    if drop is not None:  # parameter groups: their terms are their own losses
      kept = {k: v for k, v in terms.items() if k not in drop}
      return objectives.total(rec, kept, weights, ramp).mean(), (means, deltas, terms)
    return objectives.total(rec, terms, weights, ramp).mean(), (means, deltas)

  if state.groups:
    loss, means, deltas, grads = _grads_by_group(state, loss_fn, weights)
  else:
    (loss, (means, deltas)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  with jax.named_scope("optimizer"):
    state = state.apply_gradients(grads=grads)
    # Updates outside the gradient (a VQ-VAE's EMA codebook), after the optimizer's.
    if deltas:
      state = state.replace(params=objectives.add_deltas(state.params, deltas))
    return state, {"loss": loss, **means}


def _grads_by_group(state: TrainState, loss_fn, weights):
  """(the model's loss, means, deltas, gradients) where each parameter group's gradient is
  that of its own loss: the model's objective without the groups' terms for the rest of the
  model, a group's weighted terms for its parameters. One forward pass; one backward pass
  per group (jax.vjp), each pruned by XLA to what its group needs."""
  owned = {t for g in state.groups for t in g.terms}
  w = dict(objectives.as_weights(weights).terms)

  def losses_fn(params):
    # The objective of the rest of the model: loss_fn with the groups' terms left out.
    obj, (means, deltas, terms) = loss_fn(params, drop=owned)
    losses = {"model": obj}
    for g in state.groups:
      losses[g.name] = sum(w.get(t, 1.0) * terms[t] for t in g.terms).mean()
    return losses, (means, deltas)

  losses, vjp, (means, deltas) = jax.vjp(losses_fn, state.params, has_aux=True)
  names = ["model"] + [g.name for g in state.groups]
  per_group = [vjp({m: jnp.float32(m == n) for m in names})[0] for n in names]
  labels = group_labels(state.groups, state.params)
  grads = jax.tree.map(lambda label, *gs: gs[names.index(label)], labels, *per_group)
  return losses["model"], means, deltas, grads


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
  draws = objectives.as_weights(weights).importance_samples
  x = noisy
  if padded is not None:
    h, w = clean.shape[1:3]
    x = jnp.pad(noisy, ((0, 0), (0, padded[0] - h), (0, padded[1] - w), (0, 0)), mode="edge")
  logits, terms, reported = objectives.apply(state.apply_fn, state.params, x, rng, draws)
  if padded is not None:  # (draws first, where there are several)
    logits = logits[..., :h, :w, :]
  rec = objectives.reconstruction(loss_kind, logits, clean)
  owned = {t for g in state.groups for t in g.terms}  # a group's terms: its own loss
  objective = objectives.total(rec, {k: v for k, v in terms.items() if k not in owned}, weights,
                               objectives.warmup(state.step, warmup_steps)
                               ) if terms or draws > 1 else rec
  if draws > 1:  # the images and their metrics from the first draw, terms over all draws
    logits, rec = logits[0], rec.mean(axis=0)
    terms, reported = ({k: v.mean(axis=0) for k, v in d.items()} for d in (terms, reported))
  restored = jax.nn.sigmoid(logits)
  per_image = {
      "val_loss": objective,
      "val_bce": metrics.bce_from_logits(logits, clean),
      "val_mse": metrics.mse(restored, clean),
      "val_psnr": metrics.psnr(restored, clean),
      "val_ssim": metrics.ssim(restored, clean),
  }
  per_image.update({f"val_{k}": v for k, v in {**terms, **reported}.items()})
  if terms or draws > 1:
    per_image["val_reconstruction"] = rec
  if scale > 0:  # denoising: how much the model improves on its noisy input
    per_image["val_noisy_psnr"] = metrics.psnr(noisy, clean)
  shown = {"original": clean[:num_shown], "noisy": noisy[:num_shown],
           "restored": restored[:num_shown]}
  if shown_sharding is not None:
    shown = jax.lax.with_sharding_constraint(shown, shown_sharding)
  return {k: (v * mask).sum() for k, v in per_image.items()}, shown
