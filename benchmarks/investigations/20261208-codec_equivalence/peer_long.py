"""peer_train.py's loop (CompressAI peer, Flax-aligned layers, sigmoid output, loss on the
whole 32x32, net + aux Adam 1e-3, optional clip_grad_norm_) for --steps steps on
shared_gen's batches and noise. Writes long_peer_<tag>.npz (loss, mse, bpp per step).
  python peer_long.py --tag clip --clip 1.0 --steps 1000"""
import argparse, sys, time
import numpy as np, torch
sys.path.insert(0, "/tmp/codecgap")
import peer_lib, shared_gen  # noqa: E402
from compressai.optimizers import net_aux_optimizer  # noqa: E402
ap = argparse.ArgumentParser()
ap.add_argument("--tag", required=True); ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--steps", type=int, default=1000)
args = ap.parse_args()
torch.set_num_threads(1)
print("checksum", shared_gen.checksum(), flush=True)
images = peer_lib.load_images().astype(np.float32) / 255.0
model = peer_lib.build(seed=0, flax_aligned=True)
opt = net_aux_optimizer(model, {"net": {"type": "Adam", "lr": 1e-3}, "aux": {"type": "Adam", "lr": 1e-3}})
crit = peer_lib.RateDistortionLoss(lmbda=0.4)
hist = {k: [] for k in ("loss", "mse", "bpp")}
model.train(); t0 = time.time()
for step in range(args.steps):
  idx, zn, yn = shared_gen.batch(step)
  x = torch.from_numpy(np.pad(images[idx], ((0, 0), (2, 2), (2, 2)))[:, None].copy())
  peer_lib.set_noise(torch.from_numpy(zn.transpose(3, 0, 1, 2).reshape(64, 1, -1).copy()),
                     torch.from_numpy(yn.transpose(0, 3, 1, 2).copy()))
  opt["net"].zero_grad(); opt["aux"].zero_grad()
  parts = peer_lib.forward_parts(model, x, sigmoid=True)
  losses = crit({"x_hat": parts["x_hat"], "likelihoods": {"y": parts["y_lik"], "z": parts["z_lik"]}}, x)
  losses["loss"].backward()
  if args.clip > 0:
    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
  opt["net"].step()
  aux = model.aux_loss(); aux.backward(); opt["aux"].step()
  hist["loss"].append(losses["loss"].item()); hist["mse"].append(losses["mse_loss"].item())
  hist["bpp"].append(losses["bpp_loss"].item())
  if step % 100 == 99:
    s = slice(step - 99, step + 1)
    print(f"steps {step-99}-{step}: loss {np.mean(hist['loss'][s]):.3f} mse {np.mean(hist['mse'][s]):.6f} "
          f"bpp {np.mean(hist['bpp'][s]):.4f} ({time.time()-t0:.0f} s)", flush=True)
    np.savez(f"/tmp/codecgap/long_peer_{args.tag}.npz", **{k: np.asarray(v) for k, v in hist.items()})
