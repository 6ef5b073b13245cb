"""ae_jax's training for N steps from the peer's initial weights (ported from
train_peer_<peer_tag>.npz's init/), the same batches and noise (batches.npz): the project's
own steps.train_step (objectives + optax) with its own optimizer (steps._optimizer: Adam
1e-3, optionally optax.clip_by_global_norm first), loss_kind 'mse', rate weight
1/(lambda 255^2 1024) (the loss on the whole 32x32). Writes train_ours_<tag>.npz and
compares with the peer's run.

  python ours_train.py --tag noclip --peer_tag noclip [--clip 1.0] [--steps 100]
  (--clip is on CompressAI's scale: ours gets clip / (lambda 255^2))
"""
import argparse
import sys

sys.path.insert(0, "/tmp/codecgap")
import ours_lib as L  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from ae_jax.training import objectives, steps  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--tag", required=True)
ap.add_argument("--peer_tag", required=True)
ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--eps_scaled", action="store_true",
                help="Adam eps = 1e-8 / (lambda 255^2): torch's eps on CompressAI's loss scale")
args = ap.parse_args()

peer = dict(np.load(f"/tmp/codecgap/train_peer_{args.peer_tag}.npz"))
data = np.load("/tmp/codecgap/batches.npz")
import gzip  # noqa: E402
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
  images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
images = images.astype(np.float32) / 255.0

model, cfg = L.build((32, 32, 1))
init = model.init({"params": jax.random.key(0)}, jnp.zeros((2, 32, 32, 1)))["params"]
params, _ = L.port(init, {k[5:]: v for k, v in peer.items() if k.startswith("init/")})
clip = args.clip / L.SCALE if args.clip > 0 else None
tx = steps._optimizer(1e-3, (), clip)
if args.eps_scaled:  # the project's optimizer with only Adam's eps changed
  adam = optax.adam(1e-3, eps=1e-8 / L.SCALE)
  tx = adam if clip is None else optax.chain(optax.clip_by_global_norm(clip), adam)
state = steps.TrainState.create(apply_fn=steps.ModelApply(model), params=params, tx=tx)
weights = objectives.Weights((("rate", L.rate_weight(32 * 32)),), 1)


def loss_only(params, x):
  logits, terms, _, _ = objectives.apply_for_training(model.apply, params, x, jax.random.key(0))
  rec = objectives.reconstruction("mse", logits, x)
  return objectives.total(rec, terms, weights).mean()


@jax.jit
def step(state, x, zn, yn):
  L.inject(zn, yn)
  g = jax.grad(loss_only)(state.params, x)  # only for the logged pre-clip norm
  gn = optax.global_norm(g)
  new, out = steps.train_step(state, x, x, "mse", jax.random.key(0), weights)
  return new, out, gn


hist = {k: [] for k in ("loss", "mse", "bpp", "gnorm")}
for i in range(args.steps):
  xb = np.pad(images[data["idx"][i]], ((0, 0), (2, 2), (2, 2)))[..., None]
  state, out, gn = step(state, jnp.asarray(xb), jnp.asarray(data["z_noise"][i]),
                        jnp.asarray(data["y_noise"][i]))
  hist["loss"].append(float(out["loss"]) * L.SCALE)
  hist["mse"].append(float(out["reconstruction"]))
  hist["bpp"].append(float(out["rate"]) / 1024)
  hist["gnorm"].append(float(gn) * L.SCALE)
  if i % 20 == 0 or i == args.steps - 1:
    print(f"step {i}: loss {hist['loss'][-1]:.4f} (peer {peer['loss'][i]:.4f}) mse "
          f"{hist['mse'][-1]:.6f} ({peer['mse'][i]:.6f}) bpp {hist['bpp'][-1]:.4f} "
          f"({peer['bpp'][i]:.4f}) |g| {hist['gnorm'][-1]:.2f} ({peer['gnorm'][i]:.2f})",
          flush=True)
out = {k: np.asarray(v) for k, v in hist.items()}
final = jax.device_get(state.params)
rels = {}
for path, tname, fn in L.mapping():
  a = np.asarray(L.get_path(final, path))
  out["final/" + "/".join(path)] = a
  rels[tname] = L.rel(a, fn(peer["final/" + tname]))
np.savez(f"/tmp/codecgap/train_ours_{args.tag}.npz", **out)
n = args.steps
for k in ("loss", "mse", "bpp", "gnorm"):
  r = np.abs(out[k] - peer[k][:n]) / np.abs(peer[k][:n])
  print(f"{k:6s} max rel diff over steps: {r.max():.2e} (step {r.argmax()}); "
        f"at steps 0/9/49/99: " + " ".join(f"{r[j]:.1e}" for j in (0, 9, 49, n - 1) if j < n))
worst = sorted(rels.items(), key=lambda kv: -kv[1])[:5]
print("final params, max rel diff (worst 5):", ", ".join(f"{k} {v:.2e}" for k, v in worst))
print("final params, median rel diff:", float(np.median(list(rels.values()))))
