"""Where a cold ae_jax start goes: the phases before the first training step, by time.

  python benchmarks/start_phases.py [--model conv] [--runs 3]

Each run is `benchmarks/peers/ae_jax_runner.py` (launch.py's `train_and_evaluate`, 20
steps, one epoch) in its own process with a new, empty compilation cache, as the first run
on a machine. Inside it, JAX's own monitoring events (jaxpr trace, lowering, XLA compile)
and wrappers around the setup functions give each phase's end (seconds since the process
started) and duration; the table shows their medians over the runs. "trace #2" is the
second jaxpr trace of the process that took over 0.05 s (shorter ones, of small helper
computations, are left out), and so on.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import json, sys
sys.path.insert(0, {peers!r})
import common  # starts the process clock
events = []
import jax, jax.monitoring
events.append(("imports: jax", common.since_start(), None))
_NAMES = {{"/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          "/jax/core/compile/backend_compile_duration": "XLA compile"}}
def on_event(name, seconds, **kwargs):
  if name in _NAMES and seconds > 0.05:  # leaves out tiny helper computations
    events.append((_NAMES[name], common.since_start(), seconds))
jax.monitoring.register_event_duration_secs_listener(on_event)
sys.argv = ["ae_jax_runner", "--model", {model!r}, "--epochs", "1", "--steps_per_epoch", "20"]
import ae_jax_runner
events.append(("imports: ae_jax and the rest", common.since_start(), None))
from ae_jax.training import checkpoint, steps
from ae_jax.data import pipeline as data
def timed(owner, attr, label):
  inner = getattr(owner, attr)
  def wrapper(*args, **kwargs):
    t0 = common.since_start()
    out = inner(*args, **kwargs)
    events.append((label, common.since_start(), common.since_start() - t0))
    return out
  setattr(owner, attr, wrapper)
timed(steps, "initial_state", "init (trace, compile, run)")
timed(checkpoint, "make_manager", "checkpoint manager")
timed(data.Source, "load_images", "data: load images")  # the eval split, then the train split
ae_jax_runner.main()  # prints its JSON record (first_step_seconds)
print(json.dumps({{"events": events}}))
"""


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="conv", choices=("dense", "conv", "denoise"))
  parser.add_argument("--runs", type=int, default=3)
  args = parser.parse_args()
  rows, first_steps = {}, []
  for _ in range(args.runs):
    with tempfile.TemporaryDirectory(prefix="ae_jax_cold_") as cache:
      env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "TF_CPP_MIN_LOG_LEVEL": "2"}
      code = CHILD.format(peers=os.path.join(HERE, "peers"), model=args.model)
      out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout
    records = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    first_steps.append(records[0]["first_step_seconds"])
    seen = {}
    for label, end, seconds in records[1]["events"]:
      if end > first_steps[-1]:
        break  # after the first step (evaluation, checkpoints)
      seen[label] = seen.get(label, 0) + 1
      key = f"{label} #{seen[label]}" if seen[label] > 1 or label in (
          "trace", "lower", "XLA compile") else label
      rows.setdefault(key, []).append((end, seconds))
  print(f"`python benchmarks/start_phases.py --model {args.model} --runs {args.runs}`: "
        f"medians over {args.runs} cold runs (new compilation cache each)\n\n"
        "| phase (in order of its end) | ends at s | takes s |\n|---|---|---|")
  for key, values in sorted(rows.items(), key=lambda kv: statistics.median(v[0] for v in kv[1])):
    took = [s for _, s in values if s is not None]  # None: a point in time (the imports)
    took_text = f"{statistics.median(took):.2f}" if took else ""
    print(f"| {key} | {statistics.median(e for e, _ in values):.2f} | {took_text} |")
  print(f"| **first step done** | **{statistics.median(first_steps):.2f}** "
        f"({min(first_steps):.2f}–{max(first_steps):.2f}) | |")


if __name__ == "__main__":
  main()
