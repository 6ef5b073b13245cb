"""A model's train step in other layer forms and XLA options, interleaved in one process.

  python benchmarks/step_forms.py --model conv_wide                   # every form, 1 thread
  python benchmarks/step_forms.py --model vqvae --forms preset,before --rounds 9
  python benchmarks/step_forms.py --model conv --threads 2 --out benchmarks/results/x.md

Maintained (benchmarks/README.md): docs/performance.md's ratios of the conv layer forms are
made with it. Each form is the real `steps.device_train_steps` of configs/<model>.py
(batch 128, one step per call, random images resident on the device), compiled with some
of ae_jax's layers swapped for another form while it is traced, or with other XLA options:

  preset        the code as it is
  before        the forms before issue #30: `UpsampleConv` as a 3x3 phase kernel built by
                an einsum with 0/1 matrices (5 of its 9 taps zero), `vq.nearest` as an
                argmin along the codebook axis
  upsample_2x2  every 'SAME' `UpsampleConv` with 2x2 phase kernels (the preset: from
                `layers.SAME_2X2_MIN_CHANNELS` input channels up)
  upsample_3x3  every 'SAME' `UpsampleConv` with 3x3 phase kernels (built as now)
  2x2_from_N    2x2 phase kernels from N input channels up (the preset's N: 64)
  argmin        only the former `vq.nearest`
  literal       every conv as `lax.conv` of its literal input: the decoder's convs over
                `upsample_2x(x)`, the lecture encoder's first conv a 1-channel conv
                (the references tests/test_models.py checks the fast forms against)
  ynn_conv      the preset with XLA:CPU's YNNPACK convolutions (jaxlib 0.10 has them on by
                default; ae_jax's `--xla_cpu_experimental_ynn_fusion_type=` turns them off)

All forms have the same parameters, so they train from the same initial state. Rounds
alternate the forms (form A `--calls` steps, form B, ..., then again), which spreads a slow
spell of a shared machine over all of them; the table gives the median ms per step of
process CPU time (`time.process_time`: what the step costs, whatever else runs) and of wall
time. `--threads 1` (the default) pins the process to one CPU and turns off XLA's
multi-threaded Eigen, so CPU time is the step's own work; `--threads 2` times the step as
training runs it here (CPU time then includes the threads' waiting). Each round also times
a 2048x2048 float32 product (XLA's Eigen and YNNPACK dots, the faster counts) the same way:
the table gives each step's FLOP rate (XLA's cost analysis of the step / its CPU time) as a
share of that matmul peak, measured in the same process at the same time.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("conv", "denoise", "conv_wide", "vqvae")
FORMS = ("preset", "before", "upsample_2x2", "upsample_3x3", "argmin", "literal", "ynn_conv")
YNN_CONV = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"}


def _former_layers():
  """The layer forms this benchmark compares against, as Flax modules with the same
  parameters as the ones they stand for."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np

  from ae_jax.models import layers

  def phase_taps(padding: str) -> np.ndarray:
    same = padding == "SAME"
    m = np.zeros((2, 3 if same else 2, 3), np.float32)
    for r in range(2):
      for a in range(3):
        m[r, (r + a - same) // 2 + same, a] = 1
    return m

  class UpsampleConv3x3(nn.Module):
    """The former `UpsampleConv`: a 3x3 (SAME) or 2x2 (VALID) phase kernel from an einsum."""
    features: int
    padding: str = "SAME"
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x):
      b, h, w, cin = x.shape
      kernel, bias = layers._conv3x3_params(self, cin, self.features)
      m = jnp.asarray(phase_taps(self.padding))
      taps = m.shape[1]
      k = jnp.einsum("rda,seb,abio->deirso", m, m, kernel).reshape(taps, taps, cin,
                                                                   4 * self.features)
      x, k, bias = layers._cast(jnp.dtype(self.dtype), x, k, bias)
      pad = ((1, 1), (1, 1)) if self.padding == "SAME" else ((0, 0), (0, 0))
      y = jax.lax.conv_general_dilated(x, k, (1, 1), pad,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
      _, ho, wo, _ = y.shape
      y = y.reshape(b, ho, wo, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
      return y.reshape(b, 2 * ho, 2 * wo, self.features) + bias

  class LiteralUpsampleConv(nn.Module):
    """nn.Conv(features, (3, 3), padding) over upsample_2x(x), the same parameters."""
    features: int
    padding: str = "SAME"
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x):
      kernel, bias = layers._conv3x3_params(self, x.shape[-1], self.features)
      x, kernel, bias = layers._cast(jnp.dtype(self.dtype), layers.upsample_2x(x), kernel, bias)
      return jax.lax.conv_general_dilated(x, kernel, (1, 1), self.padding,
                                          dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias

  class LiteralPatchConv(nn.Module):
    """nn.Conv(features, (3, 3), 'SAME'), the same parameters as `PatchConv`."""
    features: int
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x):
      kernel, bias = layers._conv3x3_params(self, x.shape[-1], self.features)
      x, kernel, bias = layers._cast(jnp.dtype(self.dtype), x, kernel, bias)
      return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias

  def argmin_nearest(z, codebook):
    """The former `vq.nearest`: argmin along the codebook axis of the [M, K] table."""
    d = (jnp.sum(z**2, 1, keepdims=True) - 2 * z @ codebook.T
         + jnp.sum(codebook**2, 1)[None])
    return jnp.argmin(d, axis=1).astype(jnp.int32)

  return UpsampleConv3x3, LiteralUpsampleConv, LiteralPatchConv, argmin_nearest


@contextlib.contextmanager
def swapped(form: str):
  """ae_jax's layers as `form` has them, while a step is traced; restored after."""
  from ae_jax.models import conv, convnet, layers, vq

  einsum_3x3, literal_upsample, literal_patch, argmin = _former_layers()
  swaps = {
      "before": {(conv, "UpsampleConv"): einsum_3x3, (convnet, "UpsampleConv"): einsum_3x3,
                 (vq, "nearest"): argmin},
      "upsample_2x2": {(layers, "SAME_2X2_MIN_CHANNELS"): 0},
      "upsample_3x3": {(layers, "SAME_2X2_MIN_CHANNELS"): 1 << 30},
      "argmin": {(vq, "nearest"): argmin},
      "literal": {(conv, "UpsampleConv"): literal_upsample,
                  (convnet, "UpsampleConv"): literal_upsample,
                  (conv, "PatchConv"): literal_patch, (vq, "nearest"): argmin},
  }.get(form, {})
  if form.startswith("2x2_from_"):
    swaps = {(layers, "SAME_2X2_MIN_CHANNELS"): int(form[len("2x2_from_"):])}
  saved = {key: getattr(*key) for key in swaps}
  try:
    for (module, name), value in swaps.items():
      setattr(module, name, value)
    yield
  finally:
    for (module, name), value in saved.items():
      setattr(module, name, value)


def compile_forms(model_name: str, forms: list[str]):
  """{form: (compiled step, its initial state)}, and the data the steps are called with."""
  sys.path.insert(0, REPO)
  import importlib

  import jax
  import jax.numpy as jnp
  import numpy as np

  from ae_jax import models
  from ae_jax.data import pipeline as data
  from ae_jax.training import objectives, steps

  config = importlib.import_module(f"configs.{model_name}").get_config()
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (60000, 28, 28, 1), np.uint8))
  perm = jnp.asarray(data.epoch_permutation(0, 0, 60000))
  kwargs = dict(num_steps=1, batch_size=config.batch_size, loc=config.noise.loc,
                scale=config.noise.scale, loss_kind=config.loss, unroll=1,
                weights=objectives.weights_of(config), warmup_steps=config.loss_warmup_steps)
  compiled = {}
  for form in forms:
    model = models.from_config(config, models.IMAGE_SHAPE)
    with swapped(form):
      state = steps.initial_state(model, config, models.IMAGE_SHAPE)
      step = steps.device_train_steps.lower(state, images, perm, jnp.int32(0), seed=0,
                                            **kwargs)
      compiled[form] = (step.compile(YNN_CONV if form == "ynn_conv" else {}), state)
  return compiled, images, perm


def flops(compiled_step) -> float | None:
  """XLA's count of a compiled step's floating-point operations (None if it gives none)."""
  analysis = compiled_step.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return (analysis or {}).get("flops")


MATMUL_N = 2048


def matmul_probes() -> dict:
  """A 2048x2048 float32 product compiled with XLA's Eigen dot and with YNNPACK's."""
  import jax
  import jax.numpy as jnp

  a = jnp.ones((MATMUL_N, MATMUL_N), jnp.float32)
  lowered = jax.jit(lambda a: a @ a).lower(a)
  ynn = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
  return {"eigen": (lowered.compile({"xla_cpu_experimental_ynn_fusion_type": ""}), a),
          "ynn": (lowered.compile(ynn), a)}


def probe_gflops(probes: dict, calls: int = 2) -> float:
  """The best GFLOP/s per CPU second of the probes, now."""
  import jax
  best = 0.0
  for product, a in probes.values():
    jax.block_until_ready(product(a))
    c0 = time.process_time()
    for _ in range(calls):
      out = product(a)
    jax.block_until_ready(out)
    best = max(best, 2 * MATMUL_N**3 * calls / (time.process_time() - c0) / 1e9)
  return best


def interleaved(compiled: dict, images, perm, rounds: int, calls: int,
                probes: dict | None = None) -> dict:
  """{form: (cpu ms per step per round, wall ms per step per round, last loss)}, and with
  `probes` (`matmul_probes()`) "matmul peak": the best GFLOP/s they reached in a round."""
  import jax
  import jax.numpy as jnp

  states, out = {}, {form: ([], [], None) for form in compiled}
  peak = 0.0
  for form, (step, state) in compiled.items():  # warm-up call
    states[form], _ = step(state, images, perm, jnp.int32(0), seed=0)
  for r in range(rounds):
    if probes:
      peak = max(peak, probe_gflops(probes))
    order = list(compiled) if r % 2 == 0 else list(compiled)[::-1]
    for form in order:
      step, state = compiled[form][0], states[form]
      t0, c0 = time.perf_counter(), time.process_time()
      for i in range(calls):
        state, losses = step(state, images, perm, jnp.int32(1 + r * calls + i), seed=0)
      jax.block_until_ready(losses)
      cpu, wall, _ = out[form]
      cpu.append((time.process_time() - c0) / calls * 1000)
      wall.append((time.perf_counter() - t0) / calls * 1000)
      out[form] = (cpu, wall, float(losses["loss"][-1]))
      states[form] = state
  if probes:
    out["matmul peak"] = peak
  return out


def table(results: dict, gflop: dict | None = None) -> str:
  """The markdown table; `gflop`: {form: GFLOP per step}, with results' "matmul peak"."""
  results = dict(results)
  peak = results.pop("matmul peak", None)
  first = next(iter(results))
  base_cpu, base_wall = (statistics.median(v) for v in results[first][:2])
  rate = bool(gflop and peak)
  rows = [f"| form | CPU ms/step, median (range) | × {first} | wall ms/step, median | "
          f"× {first} | loss at the last step |"
          + (" GFLOP/step | GFLOP/s (CPU) | share of the matmul peak |" if rate else ""),
          "|---|---|---|---|---|---|" + ("---|---|---|" if rate else "")]
  for form, (cpu, wall, loss) in results.items():
    c, w = statistics.median(cpu), statistics.median(wall)
    row = (f"| {form} | {c:.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | {c / base_cpu:.3f} | "
           f"{w:.2f} | {w / base_wall:.3f} | {loss:.5f} |")
    if rate and gflop.get(form):
      g = gflop[form]
      row += f" {g:.3f} | {g / (c / 1000):.1f} | {100 * g / (c / 1000) / peak:.0f}% |"
    elif rate:
      row += " — | — | — |"
    rows.append(row)
  if peak:
    rows += ["", f"Matmul peak in the same process: {peak:.0f} GFLOP/s per CPU second (the "
             f"best round of a {MATMUL_N}² float32 product, XLA's Eigen or YNNPACK dot)."]
  return "\n".join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="conv_wide", choices=MODELS)
  parser.add_argument("--forms", default=",".join(FORMS),
                      help=f"comma-separated, the first is the baseline (of {','.join(FORMS)})")
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--calls", type=int, default=8, help="train steps per form per round")
  parser.add_argument("--threads", type=int, default=1, choices=(1, 2),
                      help="1: one CPU, XLA's Eigen single-threaded; 2: as training runs")
  parser.add_argument("--out", help="also write the table to this markdown file")
  args = parser.parse_args()
  forms = [f for f in args.forms.split(",") if f]
  bad = [f for f in forms if f not in FORMS and not re.fullmatch(r"2x2_from_\d+", f)]
  if bad:
    parser.error(f"unknown form(s) {', '.join(bad)}: choose from {', '.join(FORMS)}")
  if args.threads == 1:  # before JAX starts
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false").strip()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  load_before = os.getloadavg()[0]
  compiled, images, perm = compile_forms(args.model, forms)
  gflop = {form: (flops(step) or 0) / 1e9 for form, (step, _) in compiled.items()}
  results = interleaved(compiled, images, perm, args.rounds, args.calls, matmul_probes())
  from benchmarks.profile_step import _cpu_model  # pylint: disable=import-outside-toplevel
  command = " ".join(["python benchmarks/step_forms.py", *sys.argv[1:]])
  text = (f"{time.strftime('%Y-%m-%d %H:%M')}, {_cpu_model()}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; `{command}`: configs/{args.model}.py's "
          f"train step, batch 128, {args.rounds} interleaved rounds of {args.calls} steps per "
          f"form, {args.threads} thread(s)\n\n" + table(results, gflop))
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
