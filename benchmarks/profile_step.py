"""Where an ae_jax train step spends its time on this machine: a JAX profiler trace, by kernel.

  python benchmarks/profile_step.py [--model dense|conv|denoise] [--calls 13]

Maintained (benchmarks/README.md): docs/performance.md's per-op profiles were made with it,
and work on a step's speed publishes its profile with it (tests/test_benchmarks.py traces
the dense and the conv step). It reads train.py's own choices (`_steps_per_call`,
`_scan_unroll`) and steps.py's name scopes: a change there must keep them, or change this.

Runs `steps.device_train_steps` as train.py runs it on this backend (steps per jit call,
loop unroll; batch 128; random images resident on the device), times `--calls` jit calls
(after a warm-up; the quickest of 3 times), then traces the same number of calls with
`jax.profiler` and sums each XLA kernel's time. Kernels are grouped by what they
compute, read from the compiled HLO: the matmuls and convolutions (`dot`, `convolution`),
the rest of the forward pass (`jvp(...)`, the loss included) and of the backward pass
(`transpose(jvp(...))`), the Adam update and the batch gather and noise (the `optimizer`
and `batch` name scopes of ae_jax/training/steps.py); "unnamed" kernels are ones XLA made (layout
copies, loop bookkeeping).

Read the sums as the profiler's view, not a partition of the step: XLA:CPU runs
independent kernels side by side on its threads, splits large ones over them, and
the profiler's own cost lands on the traced step. "Between kernels" is the traced step's
time minus its kernels' sum: the runtime that launches them and threads waiting, or, when
negative, kernels that overlapped. The step timed without the profiler is shown too.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GROUPS = ("matmuls and convolutions", "forward, the rest (loss included)",
          "backward, the rest", "optimizer (Adam)", "batch gather and noise",
          "other (loop, unnamed)")

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (?:\([^=]*?\)|\S+) ([a-z][\w\-]*)\(")
_COMPUTATION = re.compile(r"^(?:ENTRY )?%([\w.\-]+) ")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"calls=%([\w.\-]+)")


def hlo_instructions(hlo_text: str) -> dict[str, tuple[str, str]]:
  """Instruction name -> (opcode, op_name) of a compiled module's text. A fusion without
  an op_name of its own takes the first one inside the computation it calls."""
  first_op_name, current, found = {}, None, {}
  for line in hlo_text.splitlines():
    if not line.startswith(" "):
      m = _COMPUTATION.match(line)
      current = m.group(1) if m and line.rstrip().endswith("{") else None
      continue
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    op_name = _OP_NAME.search(line)
    calls = _CALLS.search(line)
    found[m.group(1)] = (m.group(2), op_name.group(1) if op_name else "",
                         calls.group(1) if calls else None)
    if current and op_name:
      first_op_name.setdefault(current, op_name.group(1))
  return {name: (opcode, op_name or first_op_name.get(calls, ""))
          for name, (opcode, op_name, calls) in found.items()}


def group_of(opcode: str, op_name: str) -> str:
  if "/optimizer/" in op_name:
    return GROUPS[3]
  if "/batch/" in op_name:
    return GROUPS[4]
  if opcode in ("dot", "convolution"):
    return GROUPS[0]
  if "transpose(jvp" in op_name:
    return GROUPS[2]
  if "jvp(" in op_name:
    return GROUPS[1]
  return GROUPS[5]


def kernel_times(events: list[dict], module: str,
                 instructions: dict) -> dict[tuple, tuple[float, int]]:
  """(opcode, op_name) -> (total microseconds, count) over the trace's kernel events of
  the HLO module `module` (XLA:CPU names each by its instruction; the runtime's own events
  and other modules' kernels are left out). The copies of one operation in an unrolled
  loop share a key."""
  totals = collections.defaultdict(lambda: [0.0, 0])
  for event in events:
    args = event.get("args", {})
    if (event.get("ph") == "X" and args.get("hlo_module") == module
        and args.get("hlo_op") in instructions):
      key = instructions[args["hlo_op"]]
      totals[key][0] += float(event.get("dur", 0.0))
      totals[key][1] += 1
  return {key: (us, n) for key, (us, n) in totals.items()}


def short(op_name: str) -> str:
  """An op_name without the jit, loop and call frames: `jvp(Autoencoder)/encoder/...`."""
  return re.sub(r"^jit\([^)]*\)/(while/body/)?(closed_call/)?", "", op_name) or "(unnamed)"


def report(times: dict, num_steps: int, traced_ms: float, step_ms: float,
           top: int = 12) -> str:
  """The table: groups, then the `top` kernels, in microseconds per step. `traced_ms` and
  `step_ms`: ms per step with and without the profiler."""
  step_us = traced_ms * 1000
  by_group = collections.Counter()
  for key, (us, _) in times.items():
    by_group[group_of(*key)] += us / num_steps
  kernels_us = sum(by_group.values())
  lines = ["| group | µs per step | share of the traced step |", "|---|---|---|"]
  for group in GROUPS:
    if by_group[group]:
      lines.append(f"| {group} | {by_group[group]:.1f} | {by_group[group] / step_us:.0%} |")
  lines.append(f"| between kernels | {step_us - kernels_us:.1f} | "
               f"{(step_us - kernels_us) / step_us:.0%} |")
  lines.append(f"| **traced step** | **{step_us:.1f}** | 100% |")
  lines.append(f"| step without the profiler (quickest of 3) | {step_ms * 1000:.1f} | |")
  lines += ["", "| operation (op_name) | kernel | group | calls per step | µs per step |",
            "|---|---|---|---|---|"]
  for (opcode, op_name), (us, n) in sorted(times.items(), key=lambda kv: -kv[1][0])[:top]:
    lines.append(f"| `{short(op_name)}` | {opcode} | {group_of(opcode, op_name)} | "
                 f"{n / num_steps:.2f} | {us / num_steps:.1f} |")
  return "\n".join(lines)


def profile(model_name: str, calls: int):
  """Times `calls` jit calls of the model's train step as train.py makes them, then traces
  them. Returns (kernel_times(...), steps traced, ms per step traced and without the
  profiler, steps per call)."""
  sys.path.insert(0, REPO)
  import jax
  import jax.numpy as jnp
  import numpy as np

  from ae_jax import models
  from ae_jax.data import pipeline as data
  from ae_jax.training import steps, train
  from configs import conv, dense, denoise

  config = {"dense": dense, "conv": conv, "denoise": denoise}[model_name].get_config()
  backend = jax.default_backend()
  per_call = train._steps_per_call(config, 60000 // config.batch_size, backend)
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  model = models.from_config(config, models.IMAGE_SHAPE)
  state = steps.create_train_state(model, config, (28, 28, 1))
  kwargs = dict(num_steps=per_call, batch_size=config.batch_size, seed=0,
                loc=config.noise.loc, scale=config.noise.scale, loss_kind=config.loss,
                unroll=train._scan_unroll(backend))
  compiled = steps.device_train_steps.lower(state, images, perm, jnp.int32(0),
                                            **kwargs).compile()
  hlo_text = compiled.as_text()
  module = re.match(r"HloModule (\S+?),? ", hlo_text).group(1)
  instructions = hlo_instructions(hlo_text)

  def run(state):
    for i in range(calls):
      state, losses = steps.device_train_steps(state, images, perm, jnp.int32(per_call * i),
                                               **kwargs)
    jax.block_until_ready(losses)
    return state

  state = run(state)  # warm-up
  untraced = []
  for _ in range(3):  # the quickest of 3: other work on the machine only ever adds time
    t0 = time.perf_counter()
    state = run(state)
    untraced.append((time.perf_counter() - t0) / (calls * per_call) * 1000)
  step_ms = min(untraced)
  with tempfile.TemporaryDirectory(prefix="ae_jax_profile_") as log_dir:
    jax.profiler.start_trace(log_dir)
    t0 = time.perf_counter()
    state = run(state)
    traced_ms = (time.perf_counter() - t0) / (calls * per_call) * 1000
    jax.profiler.stop_trace()
    files = glob.glob(os.path.join(log_dir, "**", "*.trace.json.gz"), recursive=True)
    if not files:
      raise RuntimeError(f"the profiler wrote no *.trace.json.gz under {log_dir}")
    with gzip.open(files[0]) as f:
      events = json.load(f)["traceEvents"]
  return kernel_times(events, module, instructions), calls * per_call, traced_ms, step_ms, per_call


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="dense", choices=("dense", "conv", "denoise"))
  parser.add_argument("--calls", type=int, default=13, help="jit calls timed, then traced")
  args = parser.parse_args()
  times, num_steps, traced_ms, step_ms, per_call = profile(args.model, args.calls)
  import jax
  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {jax.default_backend()}; "
        f"`python benchmarks/profile_step.py --model {args.model} --calls {args.calls}`: "
        f"train step, batch 128, {per_call} steps per jit call; {num_steps} steps traced\n")
  print(report(times, num_steps, traced_ms, step_ms))


if __name__ == "__main__":
  main()
