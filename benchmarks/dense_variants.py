"""The dense train step against its earlier forms, A/B in one process.

  python benchmarks/dense_variants.py [--rounds 40] [--repeats 2]

Each variant is `steps.device_train_steps` compiled once (36 steps per call, batch 128,
random images resident in memory); the calls alternate between the variants, so the
machine's drift (±30% over minutes here) falls on all of them alike. Prints the median
ms per step of each, and its ratio to ae_jax's form. Variants:

- ae_jax: the loss maths and the batch gather on flat [B, 784] arrays, 4 steps per loop
  iteration of the scan (`train._scan_unroll`);
- unroll 1 / 2 / 6 / 12: other numbers of steps per loop iteration;
- image-shaped: the loss and the gather on [B, 28, 28, 1] as before (unroll 4), swapped in
  for this timing only;
- optax.flatten(adam): Adam on the parameters concatenated into one vector (one update
  kernel in place of one per parameter array; the concatenation and split cost copies).

Every variant must end with the same loss, bit for bit, except optax.flatten's, whose
fused update rounds differently: within 1e-5 of it. The script checks both.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from ae_jax import models  # noqa: E402
from ae_jax.data import pipeline as data
from ae_jax.core import metrics
from ae_jax.training import steps, train
from benchmarks.timing import alternating_ms  # noqa: E402
from configs import dense  # noqa: E402

PER_CALL = train._steps_per_call(dense.get_config(), 468, "cpu")  # pylint: disable=protected-access
UNROLL = train._scan_unroll("cpu")  # pylint: disable=protected-access


def _image_shaped_bce(logits, target):
  return metrics._per_image_mean(metrics._bce_elementwise(logits, target))  # pylint: disable=protected-access


def _image_shaped_batch(images_u8, perm, i, batch_size):
  idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
  return images_u8[idx].astype(jnp.float32) / 255.0


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=40)
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  model = models.make_autoencoder("dense")

  def build(unroll, tx=None):
    state = steps.create_train_state(model, dense.get_config(), (28, 28, 1))
    if tx is not None:
      state = state.replace(tx=tx, opt_state=tx.init(state.params))
    compiled = steps.device_train_steps.lower(
        state, images, perm, jnp.int32(0), num_steps=PER_CALL, batch_size=128, seed=0,
        loc=0.5, scale=0.0, loss_kind="bce", unroll=unroll).compile()
    steps.device_train_steps.clear_cache()
    return [compiled, state]

  variants = {"ae_jax (flat, unroll 4)": build(UNROLL)}
  for unroll in (1, 2, 6, 12):
    variants[f"unroll {unroll}"] = build(unroll)
  flat_bce, flat_batch = metrics.bce_from_logits, data.device_batch
  metrics.bce_from_logits, data.device_batch = _image_shaped_bce, _image_shaped_batch
  variants["image-shaped loss and gather"] = build(UNROLL)
  metrics.bce_from_logits, data.device_batch = flat_bce, flat_batch
  variants["optax.flatten(adam)"] = build(
      UNROLL, optax.flatten(optax.adam(dense.get_config().learning_rate)))

  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; dense train step, batch "
        f"128, {PER_CALL} steps per call; calls alternate between the variants, "
        f"{args.rounds} each (after 3 warm-up calls); ms per step")
  print("\n| repeat | variant | median ms/step | ratio to ae_jax |\n|---|---|---|---|")
  for repeat in range(1, args.repeats + 1):
    times, losses = alternating_ms(
        variants, lambda ex, state, r: ex(state, images, perm, jnp.int32(PER_CALL * (r % 13)),
                                          seed=0), args.rounds)
    last_loss = {name: float(out["loss"][-1]) for name, out in losses.items()}
    flat_adam = last_loss.pop("optax.flatten(adam)")
    assert len(set(last_loss.values())) == 1, last_loss  # the same maths, bit for bit
    assert abs(flat_adam / last_loss["unroll 1"] - 1) < 1e-5, (flat_adam, last_loss)
    base = float(np.median(times["ae_jax (flat, unroll 4)"])) / PER_CALL
    for name, t in times.items():
      ms = np.median(t) / PER_CALL
      print(f"| {repeat} | {name} | {ms:.3f} | {ms / base:.2f}x |")
    # the states carry on into the next repeat: every variant has made the same steps


if __name__ == "__main__":
  main()
