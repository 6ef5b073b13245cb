"""Kill a training run at random moments, resume it, and count bit-identical endings.

  python scripts/kill_resume.py [--trials 20] [--config configs/dense.py] [--seed 0]

Trains a reference run without interruption, then for each trial starts the same run in
a fresh workdir, SIGKILLs it at a moment drawn uniformly over the reference run's wall
time (imports, compile, training steps, checkpoint writes: wherever it lands), reruns the
same command to completion, and compares the final parameters (bit for bit) and
metrics.jsonl (all but the timing fields) with the reference. Prints one line per trial
and the count. The run is short: 3 epochs x 40 steps of real Fashion-MNIST, a checkpoint
every 7 steps (so most kills land mid-epoch, between checkpoints).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax.training import checkpoint  # pylint: disable=wrong-import-position

TIMING = ("seconds", "images_per_sec")


def command(config: str, workdir: str) -> list[str]:
  return [sys.executable, os.path.join(REPO, "launch.py"), "--config", config,
          "--workdir", workdir, "--config.num_epochs=3", "--config.steps_per_epoch=40",
          "--config.checkpoint_every_steps=7", "--config.progress_bar=False"]


def outcome(workdir: str):
  _, variables = checkpoint.restore_autoencoder(workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]
  return jax.tree.map(np.asarray, variables), rows


def same(a, b) -> bool:
  (pa, ra), (pb, rb) = a, b
  leaves = zip(jax.tree.leaves(pa), jax.tree.leaves(pb))
  return ra == rb and all(np.array_equal(x, y) for x, y in leaves)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--trials", type=int, default=20)
  parser.add_argument("--config", default="configs/dense.py")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  rng = random.Random(args.seed)
  root = tempfile.mkdtemp(prefix="kill_resume_")
  try:
    t0 = time.perf_counter()
    ref_dir = os.path.join(root, "reference")
    subprocess.run(command(args.config, ref_dir), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    reference = outcome(ref_dir)
    print(f"reference run: {wall:.1f} s")
    identical = 0
    for trial in range(args.trials):
      workdir = os.path.join(root, f"trial{trial}")
      at = rng.uniform(0, wall)
      proc = subprocess.Popen(command(args.config, workdir), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
      try:
        proc.wait(timeout=at)
        killed = "finished before the kill"
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                       if s.isdigit()) if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
        killed = f"killed at {at:5.1f} s, checkpoints {steps}"
      rerun = subprocess.run(command(args.config, workdir), cwd=REPO, capture_output=True,
                             text=True)
      ok = rerun.returncode == 0 and same(outcome(workdir), reference)
      identical += ok
      print(f"trial {trial + 1:2d}: {killed}; resumed: "
            f"{'bit-identical' if ok else 'DIFFERENT: ' + rerun.stderr[-300:]}", flush=True)
      shutil.rmtree(workdir)
    print(f"{identical}/{args.trials} killed-and-resumed runs ended bit-identical to the "
          "uninterrupted run")
  finally:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
