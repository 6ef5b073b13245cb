"""The peer's training loop (benchmarks/peers/compressai_codec.py's train_epoch: zero_grad,
forward, RateDistortionLoss, backward, optional clip_grad_norm_, net Adam step, aux loss
backward, aux Adam step) for N steps on the shared batches and noise (batches.npz), on
32x32 zero-padded images with the loss on the whole 32x32, from the seed-0 initial weights
(the same as step_peer.npz's). Writes train_peer_<tag>.npz: per-step loss, mse, bpp,
pre-clip gradient norm, and the final parameters.

  python peer_train.py --tag noclip [--clip 1.0] [--no_aux] [--steps 100]
         [--orig_align] [--float64] [--sigmoid 1]
"""
import argparse
import sys

import numpy as np
import torch

sys.path.insert(0, "/tmp/codecgap")
import peer_lib  # noqa: E402
from compressai.optimizers import net_aux_optimizer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--tag", required=True)
ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--no_aux", action="store_true")
ap.add_argument("--orig_align", action="store_true")
ap.add_argument("--float64", action="store_true")
ap.add_argument("--sigmoid", type=int, default=1)
ap.add_argument("--lmbda", type=float, default=0.4)
args = ap.parse_args()
torch.set_num_threads(1)
dtype = torch.float64 if args.float64 else torch.float32

data = np.load("/tmp/codecgap/batches.npz")
images = peer_lib.load_images().astype(np.float32) / 255.0
model = peer_lib.build(seed=0, flax_aligned=not args.orig_align).to(dtype)
init_params = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()}
opt = net_aux_optimizer(model, {"net": {"type": "Adam", "lr": 1e-3},
                                "aux": {"type": "Adam", "lr": 1e-3}})
crit = peer_lib.RateDistortionLoss(lmbda=args.lmbda)
hist = {k: [] for k in ("loss", "mse", "bpp", "gnorm", "aux")}
model.train()
for step in range(args.steps):
  xb = np.pad(images[data["idx"][step]], ((0, 0), (2, 2), (2, 2)))[:, None]
  x = torch.from_numpy(xb).to(dtype)
  B = x.shape[0]
  zn = torch.from_numpy(data["z_noise"][step].transpose(3, 0, 1, 2).reshape(64, 1, -1).copy())
  yn = torch.from_numpy(data["y_noise"][step].transpose(0, 3, 1, 2).copy())
  peer_lib.set_noise(zn.to(dtype), yn.to(dtype))
  opt["net"].zero_grad()
  opt["aux"].zero_grad()
  parts = peer_lib.forward_parts(model, x, sigmoid=bool(args.sigmoid))
  losses = crit({"x_hat": parts["x_hat"], "likelihoods": {"y": parts["y_lik"],
                                                          "z": parts["z_lik"]}}, x)
  losses["loss"].backward()
  gn = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters()
                      if p.grad is not None)).item()
  if args.clip > 0:
    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
  opt["net"].step()
  aux = model.aux_loss()
  if not args.no_aux:
    aux.backward()
    opt["aux"].step()
  for k, v in (("loss", losses["loss"]), ("mse", losses["mse_loss"]),
               ("bpp", losses["bpp_loss"]), ("aux", aux)):
    hist[k].append(v.item())
  hist["gnorm"].append(gn)
  if step % 20 == 0 or step == args.steps - 1:
    print(f"step {step}: loss {hist['loss'][-1]:.4f} mse {hist['mse'][-1]:.6f} "
          f"bpp {hist['bpp'][-1]:.4f} |g| {gn:.2f} aux {hist['aux'][-1]:.2f}", flush=True)
out = {k: np.asarray(v) for k, v in hist.items()}
out.update({"final/" + n: p.detach().double().numpy() for n, p in model.named_parameters()})
out.update({"init/" + n: v for n, v in init_params.items()})
np.savez(f"/tmp/codecgap/train_peer_{args.tag}.npz", **out)
