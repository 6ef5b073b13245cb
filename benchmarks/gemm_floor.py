"""How fast this machine's matrix libraries do the dense train step's five products.

  python benchmarks/gemm_floor.py [--rounds 5] [--results benchmarks/results/X.jsonl ...]

The dense step (batch 128, 784 -> 64 -> 784) multiplies five times, 2 x 128 x 784 x 64 flops
each: forward x @ W1 and h @ W2; backward h^T @ dy (dW2), dy @ W2^T (dh) and x^T @ dh (dW1).
This times those five products, nothing else, in each library installed here:

- XLA (what ae_jax runs): the five products of 36 different batches in one jitted
  `lax.scan`, 4 per loop iteration (ae_jax's steps per call and unroll on the CPU), plus an
  SGD-like update so each product is used; Eigen's GEMM on XLA:CPU's two threads;
- numpy: `np.matmul(..., out=)` (its bundled OpenBLAS, threads as OPENBLAS_NUM_THREADS
  leaves them: all cores by default);
- PyTorch: `torch.matmul(..., out=)` with 1 and with 2 threads (its bundled BLAS / oneDNN),
  if torch is installed (the bench extra).

Transposed operands are views; each library picks its own kernels for them. numpy's and
PyTorch's times include one Python call per product (~1-5 us). Each library runs in its own
process (their thread pools spin after work and slow each other in one process: PyTorch's
2 threads 1.2 ms/step next to the others, 0.5 alone), processes alternating, `--rounds`
rounds, each 20 calls of 36 steps after 3 warm-up calls; the table gives each library's
median and fastest call, ms per step.

With `--results`, benchmark run records (run.py's .jsonl), the table ends with the budget
the issue's dense target leaves: half of Keras/JAX's fastest dense epoch (after the first)
per step. If the fastest library's five products alone take about that long, the whole
step (the products plus the batch gather, the loss and Adam) cannot.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.timing import child_json  # noqa: E402  pylint: disable=wrong-import-position

B, D, K = 128, 784, 64
STEP_FLOP = 5 * 2 * B * D * K
STEPS = 36  # ae_jax's steps per jit call for dense on the CPU (train._steps_per_call)
LIBRARIES = {"xla": "XLA (ae_jax's jax, in lax.scan)", "numpy": "numpy (OpenBLAS)",
             "torch1": "PyTorch, 1 thread", "torch2": "PyTorch, 2 threads"}
CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
import numpy as np
from benchmarks import gemm_floor as g
ops = g._operands(np.random.default_rng(0))
run = {{"xla": lambda: g.xla_steps(ops), "numpy": lambda: g.numpy_steps(ops),
        "torch1": lambda: g.torch_steps(ops, 1), "torch2": lambda: g.torch_steps(ops, 2)}}[{lib!r}]()
times = []
for i in range(23):
  t0 = time.perf_counter()
  run()
  if i >= 3:
    times.append((time.perf_counter() - t0) / g.STEPS * 1000)
print(json.dumps(times))
"""


def _operands(rng):
  f = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)
  return {"x": f(STEPS, B, D), "w1": f(D, K), "w2": f(K, D), "dy": f(STEPS, B, D)}


def _five_products(ops, matmul, empty, before=lambda: None):
  """The five products of each of STEPS batches with a library's `matmul(a, b, out=c)`,
  into buffers from its `empty(*shape)`; `before` runs first (thread settings)."""
  x, w1, w2, dy = ops["x"], ops["w1"], ops["w2"], ops["dy"]
  h, y, dw2, dh, dw1 = (empty(*s) for s in ((B, K), (B, D), (K, D), (B, K), (D, K)))

  def run():
    before()
    for i in range(STEPS):
      matmul(x[i], w1, out=h)
      matmul(h, w2, out=y)
      matmul(h.T, dy[i], out=dw2)
      matmul(dy[i], w2.T, out=dh)
      matmul(x[i].T, dh, out=dw1)
    return dw1
  return run


def numpy_steps(ops):
  return _five_products(ops, np.matmul, lambda *shape: np.empty(shape, np.float32))


def torch_steps(ops, threads):
  import torch  # pylint: disable=import-outside-toplevel
  return _five_products({k: torch.from_numpy(v) for k, v in ops.items()}, torch.matmul,
                        torch.empty, lambda: torch.set_num_threads(threads))


def xla_steps(ops):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from ae_jax.training import train  # pylint: disable=import-outside-toplevel  (its XLA flag too)

  @jax.jit
  def steps(w, x, dy):
    def body(w, xd):
      (w1, w2), (xb, dyb) = w, xd
      h = xb @ w1
      y = h @ w2
      dw2 = h.T @ dyb + 1e-3 * y[:K]  # y used, so XLA keeps the product
      dw1 = xb.T @ (dyb @ w2.T)
      return (w1 - 1e-6 * dw1, w2 - 1e-6 * dw2), None
    return jax.lax.scan(body, w, (x, dy), unroll=train._scan_unroll("cpu"))[0]  # pylint: disable=protected-access

  w = (jnp.asarray(ops["w1"]), jnp.asarray(ops["w2"]))
  x, dy = jnp.asarray(ops["x"]), jnp.asarray(ops["dy"])
  return lambda: jax.block_until_ready(steps(w, x, dy))


def budget_ms(paths) -> tuple[float, str] | None:
  """Half of Keras/JAX's fastest dense epoch after the first, per step, over `paths`."""
  best = None
  for path in paths:
    with open(path) as f:
      for line in f:
        r = json.loads(line) if line.strip() else {}
        if r.get("framework") == "keras-jax" and r.get("model") == "dense":
          fastest = min(r["epoch_seconds"][1:])
          if best is None or fastest < best[0]:
            best = (fastest, r["steps_per_epoch"], os.path.basename(path))
  if best is None:
    return None
  return 0.5 * best[0] / best[1] * 1000, f"{best[0]:.3f} s/epoch ({best[2]})"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--results", nargs="*", default=[])
  args = parser.parse_args()
  libraries = dict(LIBRARIES)
  if importlib.util.find_spec("torch") is None:
    print("(PyTorch not installed: pip install -e '.[bench]')")
    del libraries["torch1"], libraries["torch2"]
  times = {lib: [] for lib in libraries}
  for _ in range(args.rounds):
    for lib in libraries:
      times[lib] += child_json(CHILD.format(repo=REPO, lib=lib), {})
  print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; the dense step's five "
        f"products (batch {B}, {D} -> {K} -> {D}, {STEP_FLOP / 1e6:.1f} MFLOP per step); "
        f"{args.rounds} rounds of one process per library, 20 calls of {STEPS} steps each")
  print("\n| library | median ms/step | fastest call ms/step | GFLOP/s at the fastest |")
  print("|---|---|---|---|")
  for lib, t in times.items():
    print(f"| {libraries[lib]} | {np.median(t):.3f} | {min(t):.3f} | {STEP_FLOP / min(t) / 1e6:.0f} |")
  budget = budget_ms(args.results)
  if budget is not None:
    print(f"\nbudget for the whole step at 0.5x Keras/JAX: {budget[0]:.3f} ms "
          f"(half its fastest epoch, {budget[1]})")


if __name__ == "__main__":
  main()
