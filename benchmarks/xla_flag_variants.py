"""XLA:CPU flags against ae_jax's own setting, on the dense train step.

  python benchmarks/xla_flag_variants.py [--rounds 3] [--flags="--a=1;--b=2 --c=3"]

Each setting runs in its own process (XLA reads its flags once, at start-up), the settings
alternating, `--rounds` times, so the machine's drift falls on all of them alike. A process
times `steps.device_train_steps` as a dense run calls it on the CPU (36 steps per call, 4 per
loop iteration, batch 128, random images resident in memory): one epoch of 13 calls, 8
times after a warm-up, and reports the median and fastest ms per step and a hash of the
trained parameters. ae_jax's import adds its own flag (`ae_jax/core/xla_flags.py`) to each
setting. Prints a table: each setting's median over the rounds of its medians, its ratio
to ae_jax's setting, and whether its parameters are bit-identical to ae_jax's.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.timing import child_json  # noqa: E402  pylint: disable=wrong-import-position

# Flags of jaxlib 0.10's XLA:CPU that change the code compiled or the way it runs
# (`XLA_FLAGS=--help python -c "import jax; jax.numpy.ones(1)"` lists them all).
DEFAULT_FLAGS = (
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_experimental_onednn_fusion_type=dot",
    "--xla_cpu_experimental_xnn_fusion_type=dot",
    "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
    "--xla_cpu_multi_thread_eigen=false",
    "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion",
)

CHILD = """
import hashlib, json, sys, time
sys.path.insert(0, {repo!r})
import jax, jax.numpy as jnp, numpy as np
from ae_jax import models
from ae_jax.data import pipeline as data
from ae_jax.training import steps, train
from configs import dense

config = dense.get_config()
per_call = train._steps_per_call(config, 468, "cpu")
kw = dict(num_steps=per_call, batch_size=128, seed=0, loc=0.5, scale=0.0, loss_kind="bce",
          unroll=train._scan_unroll("cpu"))
images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
state = steps.create_train_state(models.make_autoencoder("dense"), config, (28, 28, 1))
state, out = steps.device_train_steps(state, images, perm, jnp.int32(0), **kw)
out["loss"].block_until_ready()
times = []
for _ in range(8):
  t0 = time.perf_counter()
  for i in range(468 // per_call):
    state, out = steps.device_train_steps(state, images, perm, jnp.int32(per_call * i), **kw)
  out["loss"].block_until_ready()
  times.append((time.perf_counter() - t0) / (468 // per_call * per_call) * 1000)
digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in jax.tree.leaves(state.params)))
print(json.dumps({{"median": float(np.median(times)), "fastest": min(times),
                  "params": digest.hexdigest()[:12]}}))
"""


def child(flags: str) -> dict:
  """The child's timings, or {"crashed": why} if it died (on a Zen 5 CPU, oneDNN's dot
  fusion dies of SIGILL): one setting must not end the comparison."""
  try:
    return child_json(CHILD.format(repo=REPO), {"XLA_FLAGS": flags})
  except subprocess.CalledProcessError as e:
    died = (f"signal {signal.Signals(-e.returncode).name}" if e.returncode < 0
            else f"exit status {e.returncode}")
    return {"crashed": died}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--flags", default=";".join(DEFAULT_FLAGS),
                      help="settings to try, separated by ';' (one setting may hold several "
                           "flags, separated by spaces)")
  args = parser.parse_args()
  settings = [""] + [f.strip() for f in args.flags.split(";") if f.strip()]
  results = {s: [] for s in settings}
  for _ in range(args.rounds):
    for setting in settings:
      results[setting].append(child(setting))
  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; dense train step, batch "
        f"128, 36 steps per call; {args.rounds} alternating processes per setting, each the "
        "median (fastest) of 8 epochs; ms per step\n")
  print("| XLA_FLAGS (ae_jax's own flag added) | median ms/step | fastest | ratio to ae_jax's "
        "| parameters bit-identical |\n|---|---|---|---|---|")
  base = statistics.median(r["median"] for r in results[""])
  base_params = results[""][0]["params"]
  for setting, runs in results.items():
    crashed = [r["crashed"] for r in runs if "crashed" in r]
    if crashed:
      print(f"| {setting} | crashed ({crashed[0]}) in {len(crashed)} of {len(runs)} "
            "processes | | | |")
      continue
    med = statistics.median(r["median"] for r in runs)
    same = all(r["params"] == base_params for r in runs)
    print(f"| {setting or '(ae_jax: none added)'} | {med:.3f} | "
          f"{min(r['fastest'] for r in runs):.3f} | {med / base:.2f}x | {'yes' if same else 'no'} |")


if __name__ == "__main__":
  main()
