"""Where the dense autoencoder's train step spends its time on XLA:CPU, and what the
XLA flag ae_jax sets at import (ae_jax/core/xla_flags.py) changes.

  python benchmarks/dense_ops.py [--rounds 3]

Times ms per step of `steps.device_train_steps` as a dense run on the CPU calls it (36 steps
per jit call, 4 per loop iteration: `train._steps_per_call`, `train._scan_unroll`; batch 128,
random images resident in memory; median of 5 rounds of 13 calls, one epoch) for the
model's BCE (`metrics.bce_from_logits`: custom VJP, series log1p), the same BCE written plainly (softplus(z) - t z,
JAX's autodiff: ae_jax's form before), as a floor that is not the model's maths, a loss
with no transcendental functions, and, as a bound, the step's five matmuls alone. The last
columns: a 2048x2048 float32 product's GFLOP/s in that process, and the ae_jax step's share
of the run's best such product (the peak), counting the step's 5 x 2 x 128 x 784 x 64 =
64.2 MFLOP. Each setting runs in its
own process, alternating, `--rounds` times: with ae_jax's XLA flag, and with XLA's default
flags (AE_JAX_KEEP_XLA_FLAGS=1).
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.timing import child_json  # noqa: E402  pylint: disable=wrong-import-position
STEP_FLOP = 5 * 2 * 128 * 784 * 64  # forward 2 matmuls, backward 3 (no input gradient)

CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
import jax, jax.numpy as jnp, numpy as np
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.core import metrics
from ae_jax.training import steps, train
from benchmarks.timing import median_ms
from configs import dense

PER_CALL = train._steps_per_call(dense.get_config(), 468, "cpu")
UNROLL = train._scan_unroll("cpu")

def ms_per_step(loss_kind):
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = data.epoch_permutation(0, 0, 60000)
  model = models.make_autoencoder("dense")
  state = steps.create_train_state(model, dense.get_config(), (28, 28, 1))
  run = lambda state, first: steps.device_train_steps(
      state, images, perm, jnp.int32(first), num_steps=PER_CALL, batch_size=128, seed=0,
      loc=0.5, scale=0.0, loss_kind=loss_kind, unroll=UNROLL)
  state, losses = run(state, 0)
  jax.block_until_ready(losses)
  times = []
  for _ in range(5):
    t0 = time.perf_counter()
    for i in range(468 // PER_CALL):
      state, losses = run(state, PER_CALL * i)
    jax.block_until_ready(losses)
    times.append((time.perf_counter() - t0) / (468 // PER_CALL * PER_CALL) * 1000)
  return float(np.median(times))

out = {{"bce": ms_per_step("bce")}}
# ae_jax's BCE before its custom VJP and series log1p: softplus(z) - t z, JAX's autodiff.
metrics.reconstruction_loss = lambda kind, logits, target: (
    jax.nn.softplus(logits) - logits * target).mean((1, 2, 3))
steps.device_train_steps.clear_cache()
out["plain_bce"] = ms_per_step("bce")
# The floor: squared logits, no exp/log (not the model's loss; swapped in for this timing).
metrics.reconstruction_loss = lambda kind, logits, target: (
    jnp.square(logits - target).mean((1, 2, 3)))
steps.device_train_steps.clear_cache()
out["floor"] = ms_per_step("bce")

# The matmuls alone: the step's five 128x784x64 products (forward 2, backward 3) and an SGD
# update, on batches of the same random images, 64 steps per call (a bound on the step).
x = jnp.asarray(np.random.default_rng(1).random((64, 128, 784), np.float32))
w = (0.03 * jax.random.normal(jax.random.key(1), (784, 64)),
     0.03 * jax.random.normal(jax.random.key(2), (64, 784)))

@jax.jit
def dots(w, x):
  def body(w, xb):
    w1, w2 = w
    z = xb @ w1
    g = z @ w2 - xb
    dw2, dw1 = z.T @ g, xb.T @ (g @ w2.T)
    return (w1 - 1e-6 * dw1, w2 - 1e-6 * dw2), None
  return jax.lax.scan(body, w, x)[0]

out["dots"] = median_ms(dots, w, x, n=4) / 64

# The matmul peak: one 2048x2048 float32 product (median of 5 rounds of 2).
a = jnp.ones((2048, 2048), jnp.float32)
out["peak_gflops"] = 2 * 2048**3 / (median_ms(jax.jit(lambda a: a @ a), a, n=2) / 1000) / 1e9
print(json.dumps(out))
"""


def child(keep_xla_defaults: bool) -> dict:
  return child_json(CHILD.format(repo=REPO),
                    {"AE_JAX_KEEP_XLA_FLAGS": "1"} if keep_xla_defaults else {})


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; dense train step, "
        "batch 128, 36 steps per call, 4 per loop iteration; ms per step")
  print("| round | XLA flags | BCE (ae_jax) | BCE, plain softplus form | floor: no exp/log | "
        "the 5 matmuls alone | 2048² matmul GFLOP/s | BCE step, % of peak |\n"
        "|---|---|---|---|---|---|---|---|")
  rows = []
  for r in range(1, args.rounds + 1):
    for keep, name in ((True, "XLA defaults (YNNPACK fusions on)"),
                       (False, "ae_jax: --xla_cpu_experimental_ynn_fusion_type=")):
      rows.append((r, name, child(keep)))
  # The peak: the fastest 2048x2048 product of the run (YNNPACK's dot, with XLA's defaults,
  # beats the one ae_jax's flag leaves, but only on large products).
  peak = max(ms["peak_gflops"] for _, _, ms in rows)
  for r, name, ms in rows:
    share = 100 * STEP_FLOP / (ms["bce"] / 1000) / (peak * 1e9)
    print(f"| {r} | {name} | {ms['bce']:.2f} | {ms['plain_bce']:.2f} | {ms['floor']:.2f} | "
          f"{ms['dots']:.2f} | {ms['peak_gflops']:.0f} | {share:.0f}% |")
  half_peak_ms = STEP_FLOP / (0.5 * peak * 1e9) * 1000
  print(f"\nmatmul peak: {peak:.0f} GFLOP/s (the best 2048x2048 product above); a step of "
        f"{STEP_FLOP / 1e6:.1f} MFLOP at 50% of it takes {half_peak_ms:.2f} ms")


if __name__ == "__main__":
  main()
