"""The objective a train step minimizes: the reconstruction loss plus the terms the model
reports, each times its weight from the config.

A module reports a term per image with `self.sow("losses", name, values_B)` (the sparse
encoder's `l1`; a VAE's `kl`, a VQ-VAE's `commitment`) and a quantity to log only with
`self.sow("metrics", name, values_B)` (`code_mean`). Both are logged by name, train and
val; a term without a weight in `config.loss_weights` weighs 1. A module that updates
parameters outside the gradient (a VQ-VAE's EMA codebook) writes, in the train step only,
what to add to them in the collection `param_deltas` (`DELTAS`); the step adds it after the
optimizer's update.

Importance-weighted objectives (`config.importance_samples` = K > 1, the IWAE of Burda et
al. 2016): the model runs on K independent draws of its 'sample' stream (a `vmap` over K
keys: what does not depend on the draw, the encoder's posterior, is computed once), each
draw's objective r_k = reconstruction + sum of weight * term is its -log w_k, and the
per-image objective is -log (1/K sum_k exp(-r_k)). With a likelihood as the reconstruction
and a Gaussian encoder that reports its KL at the draw (`kl=sampled`: log q(z_k|x) -
log p(z_k)), that is the negative K-sample bound; K = 1 is the plain objective. pythae's
IWAE minimizes -sum_k sg(w~_k) log w_k, whose gradient is this one's (w~ the normalized
weights) but whose value is not a bound: tests/test_iwae.py checks both.
"""
from __future__ import annotations

from typing import Callable

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ae_jax.core import metrics
from ae_jax.models import autoencoder
from ae_jax.models.autoencoder import QUANTIZATION, SAMPLE

REPORTS = (autoencoder.LOSSES, autoencoder.METRICS)
# What a module adds to its parameters after the optimizer's update, written in the train
# step only (a VQ-VAE's EMA codebook and dead-code resets: ae_jax/models/vq.py).
DELTAS = autoencoder.DELTAS
SAMPLE_STREAM = 3  # the fold of key(seed) that sampling inside the train step draws from


def _by_name(tree) -> dict[str, jax.Array]:
  """{name: per-image values} from a sown collection ({module path...: {name: (v, ...)}}),
  values of one name (from several modules, or sown twice) added up."""
  out: dict[str, jax.Array] = {}

  def visit(node):
    for key, value in node.items():
      if isinstance(value, tuple):
        for v in value:
          v = v.astype(jnp.float32)
          out[key] = out[key] + v if key in out else v
      else:
        visit(value)

  visit(tree)
  return out


def apply(apply_fn: Callable, params, images: jax.Array, rng: jax.Array, draws: int = 1
          ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
  """(logits, loss terms, metrics) of the autoencoder on `images`, as evaluation sees it:
  `rng` is the key of the 'sample' stream, for models that sample
  (`self.make_rng('sample')`), and there is no 'quantization' stream (a codec rounds its
  code, as its codes files do); `draws` > 1: each with a leading axis of that many draws."""
  return apply_for_training(apply_fn, params, images, rng, updates=False, draws=draws)[:3]


def reconstruction(loss_kind: str, logits: jax.Array, clean: jax.Array) -> jax.Array:
  """The reconstruction loss per image ([B]), or per draw and image ([K, B]) for logits of
  K draws ([K, B, H, W, C])."""
  if logits.ndim == clean.ndim:
    return metrics.reconstruction_loss(loss_kind, logits, clean)
  k = logits.shape[0]
  target = jnp.broadcast_to(clean, logits.shape).reshape(-1, *clean.shape[1:])
  return metrics.reconstruction_loss(loss_kind, logits.reshape(target.shape),
                                     target).reshape(k, -1)


def apply_for_training(apply_fn: Callable, params, images: jax.Array, rng: jax.Array,
                       updates: bool = True, draws: int = 1):
  """`apply`'s (logits, loss terms, metrics), and the parameter deltas the model writes in
  a train step (`DELTAS`, a tree like the params' holding only what changes; {} for most
  models): `add_deltas` adds them after the optimizer's update. In a train step
  (`updates`) the 'quantization' stream gets the same key as 'sample' (Flax folds the
  module path in, not the stream's name; no model draws from both).

  With `draws` = K > 1 the model runs on K keys split from `rng` (vmapped): logits, terms
  and metrics get a leading axis of K draws ([K, B, ...])."""
  def run(key):
    rngs = {SAMPLE: key, QUANTIZATION: key} if updates else {SAMPLE: key}
    logits, reported = apply_fn({"params": params}, images, rngs=rngs,
                                mutable=list(REPORTS) + ([DELTAS] if updates else []))
    return (logits, _by_name(reported.get("losses", {})),
            _by_name(reported.get("metrics", {})), dict(reported.get(DELTAS, {})))

  if draws == 1:
    return run(rng)
  logits, terms, mets, deltas = jax.vmap(run)(jax.random.split(rng, draws))
  if deltas:
    raise ValueError("importance_samples > 1 with a model that updates parameters outside "
                     "the gradient (param_deltas) is not supported")
  return logits, terms, mets, {}


def add_deltas(params, deltas):
  """`params` with each leaf that `deltas` names (the same path) increased by its delta."""
  if not deltas:
    return params
  out = dict(params)
  for key, value in deltas.items():
    out[key] = add_deltas(params[key], value) if isinstance(value, dict) else params[key] + value
  return type(params)(out)  # a dict, or a FrozenDict


class Weights(NamedTuple):
  """How the objective weighs the model's terms and its draws: `terms`, ((name, weight), ...)
  in name order (config.loss_weights), and `importance_samples`, the draws per image whose
  importance weights it averages (config.importance_samples; 1: one draw, the plain
  objective). Hashable: a static argument of the jitted steps. Where a plain tuple of
  (name, weight) pairs is given instead, it is `terms` with one draw."""
  terms: tuple = ()
  importance_samples: int = 1


def as_weights(weights) -> Weights:
  """`weights` as `Weights` (a plain tuple of pairs: the term weights, one draw)."""
  return weights if isinstance(weights, Weights) else Weights(tuple(weights), 1)


def total(reconstruction_B: jax.Array, terms: dict[str, jax.Array],
          weights, ramp: jax.Array | None = None) -> jax.Array:
  """Per-image objective: reconstruction + sum of weight * term (terms in name order),
  each weight times `ramp` (the warm-up factor, `warmup`) where one is given. Values with
  a leading axis of K draws ([K, B]) give the importance-weighted objective of each image,
  -log mean_k exp(-(reconstruction_k + sum of weight * term_k))."""
  w = dict(as_weights(weights).terms)
  out = reconstruction_B
  for name in sorted(terms):
    weight = w.get(name, 1.0) if ramp is None else w.get(name, 1.0) * ramp
    out = out + weight * terms[name]
  if out.ndim == 2:  # [K draws, B]: -log (1/K) sum_k w_k, with log w_k = -out_k
    return -(jax.nn.logsumexp(-out, axis=0) - math.log(out.shape[0]))
  return out


def warmup(step: jax.Array, warmup_steps: int) -> jax.Array | None:
  """The factor of every term's weight at train `step`: step / warmup_steps, rising
  linearly from 0 to 1 over the first `warmup_steps` steps (the KL warm-up of Bowman et al.
  2016, Sonderby et al. 2016), then 1. None for no warm-up (weights as they are). A
  function of the step alone: a resumed run weighs as an unbroken one."""
  if not warmup_steps:
    return None
  return jnp.minimum(step.astype(jnp.float32) / warmup_steps, 1.0)


def add_elbo(row: dict, prefix: str, loss_kind: str) -> None:
  """Adds `<prefix>elbo` = -(reconstruction + kl) (nats per image, beta = 1) to a metrics
  row that holds both, when the reconstruction loss is a likelihood (metrics.LIKELIHOODS)."""
  rec, kl = row.get(prefix + "reconstruction"), row.get(prefix + "kl")
  if loss_kind in metrics.LIKELIHOODS and rec is not None and kl is not None:
    row[prefix + "elbo"] = -(rec + kl)


def weights_of(config) -> Weights:
  """config.loss_weights (ordered) and config.importance_samples, as `Weights` (a static
  argument of the steps)."""
  return Weights(tuple(sorted((k, float(v)) for k, v in config.loss_weights.items())),
                 int(config.get("importance_samples", 1)))


def reported_names(model, image_shape) -> tuple[list[str], list[str]]:
  """(loss term names, metric names) the autoencoder reports, traced without computing."""
  x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)

  def run(x):
    from ae_jax.models import registry  # pylint: disable=import-outside-toplevel
    variables = model.init(registry.shape_rngs(), x)
    return apply(model.apply, variables["params"], x, jax.random.key(2))[1:]

  losses, mets = jax.eval_shape(run, x)
  return sorted(losses), sorted(mets)

