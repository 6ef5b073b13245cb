"""Where an ae_jax train step spends its time on this machine: a JAX profiler trace, by kernel.

  python benchmarks/profile_step.py [--model dense|conv|denoise|conv_wide|vqvae] [--calls 13]
                                    [--ynn_conv] [--out FILE.md]

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
copies, loop bookkeeping). A second table splits the forward and backward passes by what a
kernel computes (`kind_of`: convolution, matmul, pooling, upsampling and depth-to-space,
padding and im2col, layout copies, reductions, the loss, other elementwise work; a fusion
counts as the convolution or matmul it holds, so YNNPACK's convolution fusions are
convolutions), a third by layer (the Flax module path in the op_name).

`--model` is any of configs/{dense,conv,denoise,conv_wide,vqvae,codec_conv,hyperprior}.py
(the codecs at their default lambda), the step compiled with the compiler options the
train loop gives it (`steps.train_compiler_options`).

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
  an op_name of its own takes the first one inside the computation it calls. A fusion's
  opcode says what it holds: 'convolution' or 'dot' for one that holds a convolution or a
  matmul (XLA:CPU hands those to YNNPACK or oneDNN as fusions), else 'fusion', or
  'fusion(pad,reduce)' and the like naming the data-movement and reduction ops in it."""
  first_op_name, opcodes, current, found = {}, collections.defaultdict(set), None, {}
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
    if current:
      opcodes[current].add(m.group(2))
      if op_name:
        first_op_name.setdefault(current, op_name.group(1))
  return {name: (_fused_opcode(opcode, opcodes.get(calls, set())),
                 op_name or first_op_name.get(calls, ""))
          for name, (opcode, op_name, calls) in found.items()}


# Inside a fusion, the ops that say what kind of work it is (the rest is elementwise).
_NOTABLE = ("pad", "concatenate", "slice", "dynamic-slice", "gather", "scatter", "reduce",
            "reduce-window", "select-and-scatter", "transpose", "copy")


def _fused_opcode(opcode: str, inside: set) -> str:
  if opcode != "fusion":
    return opcode
  for library_op in ("convolution", "dot"):
    if library_op in inside:
      return library_op
  notable = [op for op in _NOTABLE if op in inside]
  return f"fusion({','.join(notable)})" if notable else "fusion"


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


KINDS = ("convolution", "matmul", "pooling", "upsampling and depth-to-space",
         "padding and im2col", "layout copies and transposes", "reductions (bias gradients)",
         "the loss", "elementwise (bias, activations, straight-through)",
         "optimizer (Adam)", "batch gather and noise", "other (loop, unnamed)")
PASSES = ("forward", "backward", "optimizer", "batch", "other")


def pass_of(op_name: str) -> str:
  if "/optimizer/" in op_name:
    return "optimizer"
  if "/batch/" in op_name:
    return "batch"
  if "transpose(jvp" in op_name:
    return "backward"
  if "jvp(" in op_name:
    return "forward"
  return "other"


def kind_of(opcode: str, op_name: str) -> str:
  """What a kernel computes, from its (resolved) opcode and op_name: the layers of
  ae_jax/models/layers.py name their data movement (`max_pool`, `upsample`,
  `depth_to_space`, `im2col`) with jax.named_scope."""
  if "/optimizer/" in op_name:
    return "optimizer (Adam)"
  if "/batch/" in op_name:
    return "batch gather and noise"
  if opcode == "convolution":
    return "convolution"
  if opcode == "dot":
    return "matmul"
  fused = set(opcode[opcode.find("(") + 1:-1].split(",") if "(" in opcode else [opcode])
  if ("/max_pool/" in op_name or "reduce_window_max" in op_name
      or "select_and_scatter" in op_name or "select-and-scatter" in fused):
    return "pooling"
  if "/upsample/" in op_name or "/depth_to_space/" in op_name:
    return "upsampling and depth-to-space"
  if "/im2col/" in op_name or {"pad", "concatenate"} & fused:
    return "padding and im2col"
  if {"transpose", "copy"} & fused:
    return "layout copies and transposes"
  if {"reduce", "reduce-window"} & fused:  # XLA splits long sums into reduce-window + reduce
    return "reductions (bias gradients)"
  if "jvp(" in op_name and "Autoencoder" not in op_name:
    return "the loss"
  if "Autoencoder" in op_name:
    return "elementwise (bias, activations, straight-through)"
  return "other (loop, unnamed)"


def layer_of(op_name: str) -> str:
  """The Flax module path of a kernel's op_name ('encoder/conv0'), '(loss)' for the
  objective outside the model, '' for the optimizer, the batch and XLA's own kernels."""
  m = re.search(r"\(Autoencoder\)\)?/(.*)", op_name)
  if not m:
    return "(loss)" if "jvp(" in op_name and pass_of(op_name) in ("forward", "backward") else ""
  layer = []
  for part in m.group(1).split("/")[:-1]:  # the last part is the primitive
    if not re.fullmatch(r"[A-Za-z_][\w.]*", part) or part in ("while", "body", "cond",
                                                              "closed_call"):
      continue
    method = part.partition(".")[2]  # a method's frame: 'encoder.quantize' -> 'quantize'
    if method.startswith("_"):  # a private helper ('decoder._upsample'): not a layer
      continue
    layer.append(method or part)
  return "/".join(layer) or "(model)"


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
  lines += ["", kinds_table(times, num_steps, step_us), "", layers_table(times, num_steps)]
  lines += ["", "| operation (op_name) | kernel | group | calls per step | µs per step |",
            "|---|---|---|---|---|"]
  for (opcode, op_name), (us, n) in sorted(times.items(), key=lambda kv: -kv[1][0])[:top]:
    lines.append(f"| `{short(op_name)}` | {opcode} | {group_of(opcode, op_name)} | "
                 f"{n / num_steps:.2f} | {us / num_steps:.1f} |")
  return "\n".join(lines)


def kinds_table(times: dict, num_steps: int, step_us: float) -> str:
  """µs per step by what the kernels compute (rows) and the pass they belong to."""
  cells = collections.defaultdict(float)
  for (opcode, op_name), (us, _) in times.items():
    cells[kind_of(opcode, op_name), pass_of(op_name)] += us / num_steps
  passes = [p for p in PASSES if any(v for (_, q), v in cells.items() if q == p)]
  lines = ["| kind of kernel | " + " | ".join(f"{p} µs" for p in passes)
           + " | all µs | share of the traced step |", "|---" * (len(passes) + 3) + "|"]
  for kind in KINDS:
    row = [cells[kind, p] for p in passes]
    if sum(row):
      lines.append(f"| {kind} | " + " | ".join(f"{v:.0f}" if v else "" for v in row)
                   + f" | {sum(row):.0f} | {sum(row) / step_us:.0%} |")
  return "\n".join(lines)


def layers_table(times: dict, num_steps: int, top: int = 16) -> str:
  """µs per step by layer (Flax module path), forward and backward, largest first."""
  cells = collections.defaultdict(lambda: [0.0, 0.0])
  for (opcode, op_name), (us, _) in times.items():
    layer, pass_ = layer_of(op_name), pass_of(op_name)
    if layer and pass_ in ("forward", "backward"):
      cells[layer][pass_ == "backward"] += us / num_steps
  lines = ["| layer | forward µs | backward µs | both µs |", "|---|---|---|---|"]
  for layer, (fwd, bwd) in sorted(cells.items(), key=lambda kv: -sum(kv[1]))[:top]:
    lines.append(f"| `{layer}` | {fwd:.0f} | {bwd:.0f} | {fwd + bwd:.0f} |")
  return "\n".join(lines)


# configs/<name>.py; codec_conv and hyperprior at their configs' default lambda
MODELS = ("dense", "conv", "denoise", "conv_wide", "vqvae", "codec_conv", "hyperprior")


def profile(model_name: str, calls: int, compiler_options: dict | None = None,
            form: str = "preset"):
  """Times `calls` jit calls of the model's train step as train.py makes them, then traces
  them. `compiler_options`: XLA options for the step's compile (default: none beyond
  XLA_FLAGS); `form`: the layer forms, one of benchmarks/step_forms.py's. Returns (kernel_times(...), steps traced, ms per step traced and without
  the profiler, steps per call)."""
  sys.path.insert(0, REPO)
  import importlib

  import jax
  import jax.numpy as jnp
  import numpy as np

  from ae_jax import models
  from ae_jax.data import pipeline as data
  from ae_jax.training import objectives, steps, train

  config = importlib.import_module(f"configs.{model_name}").get_config()
  backend = jax.default_backend()
  per_call = train._steps_per_call(config, 60000 // config.batch_size, backend)
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  from benchmarks import step_forms
  model = models.from_config(config, models.IMAGE_SHAPE)
  kwargs = dict(num_steps=per_call, batch_size=config.batch_size,
                loc=config.noise.loc, scale=config.noise.scale, loss_kind=config.loss,
                unroll=train._scan_unroll(backend), weights=objectives.weights_of(config),
                warmup_steps=config.loss_warmup_steps)
  with step_forms.swapped(form):
    state = steps.initial_state(model, config, (28, 28, 1))  # as train.py makes it
    compiled = steps.device_train_steps.lower(state, images, perm, jnp.int32(0), seed=0,
                                              **kwargs).compile(compiler_options or {})
  times, traced_ms, step_ms = trace_compiled(compiled, state, images, perm, calls, per_call)
  return times, calls * per_call, traced_ms, step_ms, per_call


def trace_compiled(compiled, state, images, perm, calls: int, per_call: int = 1):
  """Times and traces `calls` calls of a compiled `steps.device_train_steps` (for other
  forms of a model, too). Returns (kernel_times(...), ms per step traced, ms per step
  without the profiler, the quickest of 3)."""
  import jax
  import jax.numpy as jnp

  hlo_text = compiled.as_text()
  module = re.match(r"HloModule (\S+?),? ", hlo_text).group(1)
  instructions = hlo_instructions(hlo_text)

  def run(state):
    for i in range(calls):
      state, losses = compiled(state, images, perm, jnp.int32(per_call * i), seed=0)
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
  return kernel_times(events, module, instructions), traced_ms, step_ms


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "?"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="dense", choices=MODELS)
  parser.add_argument("--calls", type=int, default=13, help="jit calls timed, then traced")
  parser.add_argument("--xla_option", action="append", default=[], metavar="NAME=VALUE",
                      help="an XLA option for the step's compile (repeatable), e.g. "
                      "xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION")
  parser.add_argument("--form", default="preset",
                      help="the layer forms (benchmarks/step_forms.py's --forms), e.g. before")
  parser.add_argument("--top", type=int, default=12, help="kernels listed one by one")
  parser.add_argument("--out", help="also write the report to this markdown file")
  args = parser.parse_args()
  options = dict(o.split("=", 1) for o in args.xla_option)
  load_before = os.getloadavg()[0]
  times, num_steps, traced_ms, step_ms, per_call = profile(args.model, args.calls, options,
                                                           args.form)
  import jax
  command = " ".join(["python benchmarks/profile_step.py", *sys.argv[1:]])
  text = (f"{time.strftime('%Y-%m-%d %H:%M')}, {_cpu_model()}, {os.cpu_count()} CPUs, "
          f"{jax.default_backend()}, load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
          f"`{command}`: train step, batch 128, {per_call} steps per jit call; "
          f"{num_steps} steps traced\n\n" + report(times, num_steps, traced_ms, step_ms, top=args.top))
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
