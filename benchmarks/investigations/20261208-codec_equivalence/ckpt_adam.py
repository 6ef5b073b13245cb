"""How much Adam's eps = 1e-8 damps ours' updates in a trained run: restores (read-only)
the optimizer state of runs/hyperprior8/0.4 (8 epochs, unclipped, optax.adam eps 1e-8 on
ours' loss = CompressAI's / (lambda 255^2)) and, per parameter tensor, reports the share of
entries whose sqrt(nu_hat) (the RMS gradient Adam divides by) is below eps, and the median
of sqrt(nu_hat) / (sqrt(nu_hat) + eps): the factor by which eps shrinks the update relative
to CompressAI's (whose gradients are lambda 255^2 = 26010x larger, so eps is negligible
there: the same factor with eps / 26010).

  /work/main/.venv/bin/python /tmp/codecgap/ckpt_adam.py [workdir] [step]
"""
import os, sys
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
import numpy as np
import orbax.checkpoint as ocp
import jax

workdir = sys.argv[1] if len(sys.argv) > 1 else "/work/main/runs/hyperprior8/0.4"
step = sys.argv[2] if len(sys.argv) > 2 else "3744"
path = os.path.join(workdir, "checkpoints", step, "state")
tree = ocp.PyTreeCheckpointer().restore(path)
print("top-level keys:", list(tree.keys()))
opt = tree["opt_state"]
def find(node, name, trail=()):
  if isinstance(node, dict):
    if name in node: return node[name], trail
    for k, v in node.items():
      r = find(v, name, trail + (k,))
      if r is not None: return r
  elif isinstance(node, (list, tuple)):
    for i, v in enumerate(node):
      r = find(v, name, trail + (i,))
      if r is not None: return r
  return None
nu, where = find(opt, "nu")
count, _ = find(opt, "count")
t = int(np.asarray(count))
print("opt_state path", where, "count", t)
b2 = 0.999
scale = 0.4 * 255.0**2
flat = jax.tree_util.tree_flatten_with_path(nu)[0]
tot_n = tot_below = 0
rows = []
for p, v in flat:
  v = np.asarray(v, np.float64)
  rms = np.sqrt(v / (1 - b2**t))
  damp = rms / (rms + 1e-8)
  below = (rms < 1e-8).mean()
  tot_n += v.size; tot_below += (rms < 1e-8).sum()
  name = "/".join(str(getattr(k, "key", k)) for k in p)
  rows.append((name, v.size, np.median(rms), below, np.median(damp), np.mean(damp)))
print(f"{'tensor':40s} {'size':>8s} {'med RMS g':>10s} {'<eps':>6s} {'med factor':>10s} {'mean factor':>11s}")
for r in rows:
  print(f"{r[0]:40s} {r[1]:8d} {r[2]:10.2e} {r[3]:6.1%} {r[4]:10.3f} {r[5]:11.3f}")
print(f"all: {tot_below / tot_n:.1%} of {tot_n} entries have RMS gradient < eps (1e-8)")
