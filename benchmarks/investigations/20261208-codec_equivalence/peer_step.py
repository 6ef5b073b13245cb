"""One training forward/backward of the (Flax-aligned) CompressAI peer on fixed inputs and
fixed noise; saves weights, intermediates, loss terms and gradients to step_peer.npz
(float32, and a float64 copy of the same computation as the rounding reference).
Also saves the layer-alignment check (original peer conv/deconv vs the Flax-aligned ones).

  /work/main/benchmarks/.venv-compressai/bin/python /tmp/codecgap/peer_step.py
  ... peer_step.py /tmp/codecgap/train_peer_noclip.npz   (from the peer's state after 100
      steps: writes step_peer_trained.npz)
"""
import copy
import sys

import numpy as np
import torch

sys.path.insert(0, "/tmp/codecgap")
import peer_lib  # noqa: E402

torch.set_num_threads(1)
LMBDA = 0.4
B = 32

rng = np.random.default_rng(123)
imgs = peer_lib.load_images(B).astype(np.float32) / 255.0
x_nhwc = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))[..., None]            # zero pad 2 px
z_noise_nhwc = rng.uniform(-0.5, 0.5, (B, 1, 1, 64)).astype(np.float32)
y_noise_nhwc = rng.uniform(-0.5, 0.5, (B, 4, 4, 96)).astype(np.float32)


def run(model, dtype):
  model = model.to(dtype)
  model.train()
  x = torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy()).to(dtype)
  zn = torch.from_numpy(z_noise_nhwc.transpose(3, 0, 1, 2).reshape(64, 1, -1).copy()).to(dtype)
  yn = torch.from_numpy(y_noise_nhwc.transpose(0, 3, 1, 2).copy()).to(dtype)
  peer_lib.set_noise(zn, yn)
  model.zero_grad()
  parts = peer_lib.forward_parts(model, x, sigmoid=True)
  crit = peer_lib.RateDistortionLoss(lmbda=LMBDA)
  losses = crit({"x_hat": parts["x_hat"], "likelihoods": {"y": parts["y_lik"],
                                                          "z": parts["z_lik"]}}, x)
  losses["loss"].backward()
  out = {}
  for k, v in parts.items():
    out["act/" + k] = v.detach().double().numpy()
  for k in ("loss", "mse_loss", "bpp_loss"):
    out["loss/" + k] = np.float64(losses[k].item())
  for name, p in model.named_parameters():
    out["param/" + name] = p.detach().double().numpy()
    if p.grad is not None:
      out["grad/" + name] = p.grad.double().numpy()
  return out


model = peer_lib.build(seed=0, flax_aligned=True)
STATE = sys.argv[1] if len(sys.argv) > 1 else None  # an npz with final/<param> (a trained state)
OUT = "/tmp/codecgap/step_peer.npz" if STATE is None else "/tmp/codecgap/step_peer_trained.npz"
if STATE:
  st = np.load(STATE)
  with torch.no_grad():
    for n, p in model.named_parameters():
      p.copy_(torch.from_numpy(st["final/" + n]).to(p.dtype))
m64 = copy.deepcopy(model)
out32 = run(model, torch.float32)
out64 = run(m64, torch.float64)
save = {"x": x_nhwc, "z_noise": z_noise_nhwc, "y_noise": y_noise_nhwc}
save.update({"f32/" + k: v for k, v in out32.items()})
save.update({"f64/" + k: v for k, v in out64.items() if not k.startswith("param/")})

# Layer alignment: the peer's original layers vs the Flax-aligned wrappers, same weights.
torch.manual_seed(1)
orig = peer_lib.build(seed=0, flax_aligned=False)
xa = torch.randn(2, 64, 8, 8)
conv = orig.g_a[2]
fconv = peer_lib.FlaxConv(conv)
deconv = orig.g_s[2]
fdeconv = peer_lib.FlaxDeconv(deconv)
with torch.no_grad():
  save["align/x"] = xa.numpy()
  save["align/conv_orig"] = conv(xa).numpy()
  save["align/conv_flax"] = fconv(xa).numpy()
  save["align/deconv_orig"] = deconv(xa).numpy()
  save["align/deconv_flax"] = fdeconv(xa).numpy()
  save["align/conv_w"] = conv.weight.numpy()
  save["align/conv_b"] = conv.bias.numpy()
  save["align/deconv_w"] = deconv.weight.numpy()
  save["align/deconv_b"] = deconv.bias.numpy()
np.savez(OUT, **save)
print("loss", out32["loss/loss"], "mse", out32["loss/mse_loss"], "bpp", out32["loss/bpp_loss"])
print("f64 loss", out64["loss/loss"])
print("params:", [n for n in out32 if n.startswith("param/")])
