"""ours_train.py's run (the project's steps.train_step and optimizer, the peer's seed-0
initial weights ported in, rate weight 1/(lambda 255^2 1024)) for --steps steps on
shared_gen's batches and noise. --eps_scaled: Adam eps 1e-8/(lambda 255^2) (torch's eps
on CompressAI's loss scale). --clip on CompressAI's scale (ours gets clip/(lambda 255^2)).
Writes long_ours_<tag>.npz.
  python ours_long.py --tag clip --clip 1.0 --steps 1000 [--eps_scaled]"""
import argparse, sys, time, gzip
sys.path.insert(0, "/tmp/codecgap")
import ours_lib as L  # noqa: E402
import shared_gen  # noqa: E402
import jax, jax.numpy as jnp, numpy as np, optax  # noqa: E402
from ae_jax.training import objectives, steps  # noqa: E402
ap = argparse.ArgumentParser()
ap.add_argument("--tag", required=True); ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--steps", type=int, default=1000); ap.add_argument("--eps_scaled", action="store_true")
args = ap.parse_args()
print("checksum", shared_gen.checksum(), flush=True)
peer = dict(np.load("/tmp/codecgap/train_peer_noclip.npz"))  # its init/ = build(seed=0)
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
  images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28).astype(np.float32) / 255.0
model, cfg = L.build((32, 32, 1))
init = model.init({"params": jax.random.key(0)}, jnp.zeros((2, 32, 32, 1)))["params"]
params, _ = L.port(init, {k[5:]: v for k, v in peer.items() if k.startswith("init/")})
clip = args.clip / L.SCALE if args.clip > 0 else None
tx = steps._optimizer(1e-3, (), clip)
if args.eps_scaled:
  adam = optax.adam(1e-3, eps=1e-8 / L.SCALE)
  tx = adam if clip is None else optax.chain(optax.clip_by_global_norm(clip), adam)
state = steps.TrainState.create(apply_fn=steps.ModelApply(model), params=params, tx=tx)
weights = objectives.Weights((("rate", L.rate_weight(32 * 32)),), 1)
@jax.jit
def step(state, x, zn, yn):
  L.inject(zn, yn)
  return steps.train_step(state, x, x, "mse", jax.random.key(0), weights)
hist = {k: [] for k in ("loss", "mse", "bpp")}; t0 = time.time()
for i in range(args.steps):
  idx, zn, yn = shared_gen.batch(i)
  xb = np.pad(images[idx], ((0, 0), (2, 2), (2, 2)))[..., None]
  state, out = step(state, jnp.asarray(xb), jnp.asarray(zn), jnp.asarray(yn))
  hist["loss"].append(float(out["loss"]) * L.SCALE); hist["mse"].append(float(out["reconstruction"]))
  hist["bpp"].append(float(out["rate"]) / 1024)
  if i % 100 == 99:
    s = slice(i - 99, i + 1)
    print(f"steps {i-99}-{i}: loss {np.mean(hist['loss'][s]):.3f} mse {np.mean(hist['mse'][s]):.6f} "
          f"bpp {np.mean(hist['bpp'][s]):.4f} ({time.time()-t0:.0f} s)", flush=True)
    np.savez(f"/tmp/codecgap/long_ours_{args.tag}.npz", **{k: np.asarray(v) for k, v in hist.items()})
