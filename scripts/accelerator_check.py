"""The prepared accelerator check: training images/s per model, and a GPU checkpoint that
restores on the CPU. Meant for one short session on a GPU/TPU machine; CI never runs it.

  python scripts/accelerator_check.py [--idx_dir DIR] [--out accelerator_check.md]

It needs jax, flax, optax, orbax-checkpoint, ml_collections and dm-pix, but not TensorFlow
or tfds (accelerator images often lack them): Fashion-MNIST is read from the IDX files in
--idx_dir with numpy (ae_jax/data/idx.py). The training code is the library's own: the device
pipeline of train.py (whole split resident on the accelerator, batches gathered and
noised inside jit, `steps.device_train_steps`), with a whole epoch per jit call (scan) and,
for comparison, one step per call. Images/s is the median over the timed epochs after the
first (which compiles); the val BCE is over the 10,000 test images after those epochs.

Then a denoising run is checkpointed on the accelerator with the library's orbax manager
and restored on the CPU in a subprocess (JAX_PLATFORMS=cpu): the codes must match.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax.training import checkpoint, steps  # pylint: disable=wrong-import-position
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.data import idx
from ae_jax.training import workdir as workdir_lib  # pylint: disable=wrong-import-position
from configs import conv, dense, denoise  # pylint: disable=wrong-import-position

CONFIGS = {"dense": dense, "conv": conv, "denoise": denoise, "conv-literal": conv}
# (config, batch size): the lecture's batch of 128, then larger batches that fill a GPU.
# conv-literal is the conv config with the literal modules (PlainConvEncoder/Decoder): the
# forms ae_jax uses were chosen on XLA:CPU, so this shows what they do on the accelerator.
DEFAULT_RUNS = ("dense:128,dense:1024,dense:8192,conv:128,conv-literal:128,conv:1024,"
                "conv-literal:1024,denoise:1024")

CPU_RESTORE = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
import jax
from ae_jax.training import checkpoint
x = np.load({x!r})
enc, v = checkpoint.restore_encoder({workdir!r})
np.savez({out!r}, codes=np.asarray(enc.apply(v, x)),
         **{{str(i): np.asarray(p) for i, p in enumerate(jax.tree.leaves(v["params"]))}})
print(jax.default_backend())
"""


def initial_state(config, literal: bool = False) -> steps.TrainState:
  if literal:  # same parameters (names, shapes, initial values), literal maths
    model = models.Autoencoder(encoder=models.PlainConvEncoder(),
                               decoder=models.PlainConvDecoder())
  else:
    model = models.from_config(config, models.IMAGE_SHAPE)
  return steps.initial_state(model, config, models.IMAGE_SHAPE)


def val_bce(state, test_images, config, batch_size=1000) -> float:
  total = 0.0
  for clean, mask, b in data.eval_batches(test_images, batch_size):
    sums, _ = steps.eval_step(state, clean, mask, b, loss_kind="bce", seed=config.seed,
                              loc=config.noise.loc, scale=config.noise.scale, num_shown=1)
    total += float(sums["val_bce"])
  return total / len(test_images)


def throughput(name: str, batch_size: int, per_call: str, epochs: int, train_u8, test_u8):
  """Trains `epochs` epochs; returns (median images/s of epochs 2.., val BCE, compile s)."""
  config = CONFIGS[name].get_config()
  state = initial_state(config, literal=name.endswith("-literal"))
  images = jax.device_put(train_u8)
  n = len(train_u8)
  steps_per_epoch = n // batch_size
  k = steps_per_epoch if per_call == "epoch" else 1
  rates, first = [], None
  for epoch in range(epochs):
    perm = jax.device_put(data.epoch_permutation(config.seed, epoch, n))  # host -> device once
    jax.block_until_ready(perm)
    t0 = time.perf_counter()
    for begin in range(0, steps_per_epoch, k):
      state, losses = steps.device_train_steps(
          state, images, perm, jnp.int32(begin), num_steps=min(k, steps_per_epoch - begin),
          batch_size=batch_size, seed=config.seed, loc=config.noise.loc,
          scale=config.noise.scale, loss_kind="bce")
    jax.block_until_ready((state, losses))
    seconds = time.perf_counter() - t0
    if epoch == 0:
      first = seconds
    else:
      rates.append(steps_per_epoch * batch_size / seconds)
  if not np.isfinite(np.asarray(losses["loss"])).all():
    raise RuntimeError(f"{name}: loss is not finite")
  return statistics.median(rates), val_bce(state, test_u8, config), first


def checkpoint_round_trip(train_u8, tmp: str, num_steps: int) -> str:
  """Trains the denoise config on the accelerator, saves, restores on CPU, compares codes."""
  config = denoise.get_config()
  workdir = os.path.join(tmp, "denoise")
  workdir_lib.prepare(workdir, workdir_lib.config_record(config, models.IMAGE_SHAPE))
  state = initial_state(config)
  perm = jax.device_put(data.epoch_permutation(config.seed, 0, len(train_u8)))
  state, _ = steps.device_train_steps(
      state, jax.device_put(train_u8), perm, jnp.int32(0), num_steps=num_steps,
      batch_size=config.batch_size, seed=config.seed, loc=config.noise.loc,
      scale=config.noise.scale, loss_kind="bce")
  manager = checkpoint.make_manager(workdir)
  checkpoint.save(manager, state, {"epoch_loss_sum": 0.0})
  manager.wait_until_finished()
  manager.close()
  x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)
  enc = models.from_config(config, models.IMAGE_SHAPE).encoder
  # GPUs multiply float32 in TF32 by default (~1e-3 relative): compare codes at full precision.
  with jax.default_matmul_precision("highest"):
    here = np.asarray(enc.apply({"params": state.params["encoder"]}, x))
  trained = [np.asarray(p) for p in jax.tree.leaves(state.params["encoder"])]
  np.save(os.path.join(tmp, "x.npy"), x)
  out = os.path.join(tmp, "restored.npz")
  script = CPU_RESTORE.format(repo=REPO, x=os.path.join(tmp, "x.npy"), workdir=workdir, out=out)
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"), check=False)
  if done.returncode != 0:
    return f"FAILED: the CPU restore exited {done.returncode}: {done.stderr[-400:]}"
  restored = np.load(out)
  same_params = len(trained) == len(restored.files) - 1 and all(
      np.array_equal(p, restored[str(i)]) for i, p in enumerate(trained))
  diff = float(np.abs(restored["codes"] - here).max())
  verdict = ("params bit-identical, codes match" if same_params and diff <= 1e-4 else
             f"FAILED: params {'equal' if same_params else 'differ'}, codes differ")
  return (f"denoise, {num_steps} steps on {jax.default_backend()}, checkpoint restored on "
          f"{done.stdout.strip()}: {verdict} (max |code diff| {diff:.1e}, CPU vs "
          f"{jax.default_backend()} at full float32 precision)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--idx_dir", default=data.DEFAULT_IDX_DIR)
  parser.add_argument("--out", default="accelerator_check.md")
  parser.add_argument("--runs", default=DEFAULT_RUNS, help="config:batch_size,...")
  parser.add_argument("--per_call", default="epoch,1", help="steps per jit call: epoch and/or 1")
  parser.add_argument("--epochs", type=int, default=4, help="per measurement (first compiles)")
  parser.add_argument("--restore_steps", type=int, default=200)
  parser.add_argument("--limit", type=int, default=None, help="train images (quick tries)")
  args = parser.parse_args()
  if not idx.has_idx_files(args.idx_dir):
    sys.exit(f"no Fashion-MNIST IDX files in {args.idx_dir}: pass --idx_dir")
  train_u8 = idx.load_images(args.idx_dir, "train")[:args.limit]
  test_u8 = idx.load_images(args.idx_dir, "test")
  dev = jax.devices()[0]
  lines = [f"devices: {jax.device_count()} x {dev.device_kind} ({jax.default_backend()}); "
           f"jax {jax.__version__}", "",
           "| config | batch | steps per jit call | images/s (median, epochs 2..) | "
           "first epoch (compiles) s | val BCE |", "|---|---|---|---|---|---|"]
  print("\n".join(lines), flush=True)
  for run in args.runs.split(","):
    name, batch = run.split(":")
    for per_call in args.per_call.split(","):
      rate, bce, first = throughput(name, int(batch), per_call, args.epochs, train_u8, test_u8)
      lines.append(f"| {name} | {batch} | {per_call} | {rate:,.0f} | {first:.1f} | {bce:.4f} |")
      print(lines[-1], flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    lines += ["", checkpoint_round_trip(train_u8, tmp, args.restore_steps)]
  print(lines[-1])
  with open(args.out, "w") as f:
    f.write("\n".join(lines) + "\n")
  sys.exit(0 if "FAILED" not in lines[-1] else 1)


if __name__ == "__main__":
  main()
