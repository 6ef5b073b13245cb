"""Differential test, one step: ae_jax's hyperprior (configs/hyperprior.py:0.4 via the
registry, 32x32x1, EntropyBottleneck filters (3,3,3,3) as CompressAI's) with the peer's
initial weights ported in, the same inputs and the same uniform noise as peer_step.py.
Compares intermediates, loss terms and every parameter's gradient against the peer's
float32 run, with the peer's float64 run as the rounding reference.

  /work/main/benchmarks/.venv-compressai/bin/python /tmp/codecgap/peer_step.py
  /work/main/.venv/bin/python /tmp/codecgap/ours_step.py [step_peer_trained.npz]
"""
import sys

sys.path.insert(0, "/tmp/codecgap")
import ours_lib as L  # noqa: E402  (sets XLA_FLAGS first)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax.models import entropy, layers  # noqa: E402
from ae_jax.training import objectives  # noqa: E402

d = dict(np.load(sys.argv[1] if len(sys.argv) > 1 else "/tmp/codecgap/step_peer.npz"))
T = lambda k: d["f32/" + k]  # noqa: E731
T64 = lambda k: d["f64/" + k]  # noqa: E731
rows = []


def report(name, ours, peer32, peer64=None):
  r = L.rel(ours, peer32)
  r64 = L.rel(ours, peer64) if peer64 is not None else float("nan")
  ref = L.rel(peer32, peer64) if peer64 is not None else float("nan")
  rows.append((name, r, r64, ref))
  print(f"{name:42s} ours-vs-peer32 {r:9.2e}  ours-vs-peer64 {r64:9.2e}  "
        f"peer32-vs-peer64 {ref:9.2e}", flush=True)


# ---------------------------------------------------------------- layer alignment
print("== layer alignment (8x8x64 input, g_a.2 / g_s.2 weights) ==")
xa = L.nchw_to_nhwc(d["align/x"])
for kind, cls, fn in (("conv", layers.SpaceToDepthConv, L.conv_k),
                      ("deconv", layers.SubpixelConvTranspose, L.deconv_k)):
  w, b = d[f"align/{kind}_w"], d[f"align/{kind}_b"]
  mod = cls(64, 5)
  p = {"params": {"kernel": jnp.asarray(fn(w)), "bias": jnp.asarray(b)}}
  y = np.asarray(mod.apply(p, jnp.asarray(xa)))
  # and Flax's plain layers with the same kernel
  import flax.linen as nn  # noqa: E402
  plain = (nn.Conv(64, (5, 5), (2, 2), "SAME") if kind == "conv"
           else nn.ConvTranspose(64, (5, 5), (2, 2), "SAME"))
  y_plain = np.asarray(plain.apply(p, jnp.asarray(xa)))
  flax_al = L.nchw_to_nhwc(d[f"align/{kind}_flax"])
  orig = L.nchw_to_nhwc(d[f"align/{kind}_orig"])
  print(f"{kind}: ours vs torch-flax-aligned {L.rel(y, flax_al):.2e}; ours vs nn.{'Conv' if kind == 'conv' else 'ConvTranspose'} "
        f"{L.rel(y, y_plain):.2e}; ours vs the peer's original layer {L.rel(y, orig):.2e}")

# ------------------------------------------------------------------------ model
model, cfg = L.build((32, 32, 1))
x = jnp.asarray(d["x"])
z_noise, y_noise = jnp.asarray(d["z_noise"]), jnp.asarray(d["y_noise"])
init = model.init({"params": jax.random.key(0)}, x[:2])["params"]
torch_params = {k[len("f32/param/"):]: v for k, v in d.items() if k.startswith("f32/param/")}
params, missing = L.port(init, torch_params)
print("torch parameters not ported:", missing)
n_ours = sum(a.size for a in jax.tree_util.tree_leaves(params))
n_torch = sum(v.size for k, v in torch_params.items() if not k.endswith("quantiles"))
print("parameter count ours", n_ours, "peer (without quantiles)", n_torch)

print("\n== forward, module by module (injected noise) ==")
enc = {"params": params["encoder"]}
y, z = model.encoder.apply(enc, x, method="latents")
report("y = g_a(x)", y, L.nchw_to_nhwc(T("act/y")), L.nchw_to_nhwc(T64("act/y")))
report("z = h_a(y)", z, L.nchw_to_nhwc(T("act/z")), L.nchw_to_nhwc(T64("act/z")))
z_q = z + z_noise
report("z~ = z + u", z_q, L.nchw_to_nhwc(T("act/z_hat")), L.nchw_to_nhwc(T64("act/z_hat")))
p_z = model.encoder.apply(enc, z_q, method=lambda m, v: m.prior(v))
report("P(z~) (factorized density)", p_z, L.nchw_to_nhwc(T("act/z_lik")),
       L.nchw_to_nhwc(T64("act/z_lik")))
scales, means = model.encoder.apply(enc, z_q, y.shape[1:], method="gaussian_params")
report("scales (floored 0.11)", scales, np.maximum(L.nchw_to_nhwc(T("act/scales_raw")), 0.11),
       np.maximum(L.nchw_to_nhwc(T64("act/scales_raw")), 0.11))
report("means", means, L.nchw_to_nhwc(T("act/means")), L.nchw_to_nhwc(T64("act/means")))
y_q = y + y_noise
report("y~ = y + u", y_q, L.nchw_to_nhwc(T("act/y_hat")), L.nchw_to_nhwc(T64("act/y_hat")))
p_y = entropy.gaussian_likelihood(y_q - means, scales)
report("P(y~ | z~) (Gaussian)", p_y, L.nchw_to_nhwc(T("act/y_lik")),
       L.nchw_to_nhwc(T64("act/y_lik")))
logits = model.decoder.apply({"params": params["decoder"]}, y_q)
report("g_s(y~) (logits)", logits, L.nchw_to_nhwc(T("act/logits")),
       L.nchw_to_nhwc(T64("act/logits")))
report("x^ = sigmoid(logits)", jax.nn.sigmoid(logits), L.nchw_to_nhwc(T("act/x_hat")),
       L.nchw_to_nhwc(T64("act/x_hat")))

print("\n== the project's training objective (objectives.apply_for_training + "
      "reconstruction('mse') + total), noise injected ==")
weights = objectives.Weights((("rate", L.rate_weight(32 * 32)),), 1)


def loss_fn(params, x, zn, yn):
  L.inject(zn, yn)
  logits, terms, mets, _ = objectives.apply_for_training(model.apply, params, x,
                                                         jax.random.key(0))
  rec = objectives.reconstruction("mse", logits, x)
  total = objectives.total(rec, terms, weights).mean()
  return total, (rec.mean(), terms["rate"].mean(), mets["rate_z"].mean())


(loss, (mse, rate, rate_z)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, x, z_noise, y_noise)
report("mse", mse, T("loss/mse_loss"), T64("loss/mse_loss"))
report("bpp (rate / 1024)", rate / 1024, T("loss/bpp_loss"), T64("loss/bpp_loss"))
report("loss x lambda 255^2", loss * L.SCALE, T("loss/loss"), T64("loss/loss"))
print(f"   values: ours loss*scale {float(loss) * L.SCALE:.6f}, peer {float(T('loss/loss')):.6f}; "
      f"mse {float(mse):.8f} vs {float(T('loss/mse_loss')):.8f}; bpp {float(rate) / 1024:.6f} vs "
      f"{float(T('loss/bpp_loss')):.6f}")
# bits of z alone, for the record
bits_z_peer = -np.log2(T("act/z_lik")).sum() / (32 * 1024)
report("bpp of z", rate_z / 1024, bits_z_peer)

print("\n== gradients: ours x lambda 255^2 vs the peer's ==")
grads = jax.device_get(grads)
for path, tname, fn in L.grad_mapping():
  g = np.asarray(L.get_path(grads, path)) * L.SCALE
  report("grad " + "/".join(path[1:]) + f" ({tname})", g, fn(T("grad/" + tname)),
         fn(T64("grad/" + tname)))
gn_ours = np.sqrt(sum(float(np.sum(np.square(np.asarray(a, np.float64))))
                      for a in jax.tree_util.tree_leaves(grads))) * L.SCALE
gn_peer = np.sqrt(sum(float(np.sum(np.square(v))) for k, v in d.items()
                      if k.startswith("f32/grad/")))
print(f"global gradient norm: ours x scale {gn_ours:.6f}, peer {gn_peer:.6f}")
worst = max(rows, key=lambda r: r[1] / max(r[3], 1e-7) if r[3] == r[3] else 0)
print("\nlargest ours-vs-peer32 relative difference:", max(r[1] for r in rows))
print("rows where ours-vs-peer64 exceeds 10x peer32-vs-peer64 and 1e-4:",
      [r[0] for r in rows if r[3] == r[3] and r[2] > max(10 * r[3], 1e-4)])
