"""ae_jax's hyperprior codec built through the project's own config and registry
(configs/hyperprior.py:0.4 -> registry.checked_autoencoder), CompressAI weights ported in,
and the 'quantization' noise replaced by injected arrays (a shim for the `jax` name inside
ae_jax.models.hyperprior: jax.random.uniform returns the injected z or y noise by shape).

Run with /work/main/.venv/bin/python. Nothing in /work/main is modified.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
import sys  # noqa: E402

sys.path.insert(0, "/work/main")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs import codec as codec_cfg  # noqa: E402
from configs import hyperprior as hp  # noqa: E402
from ae_jax.models import hyperprior as hyper_mod  # noqa: E402
from ae_jax.models import registry  # noqa: E402

LMBDA = 0.4
SCALE = LMBDA * 255.0**2  # CompressAI's loss = ours' loss * SCALE


def build(image_shape=(32, 32, 1), filters=(3, 3, 3, 3)):
  """The model of configs/hyperprior.py:0.4 (filters: CompressAI's EntropyBottleneck
  default (3, 3, 3, 3); the config's own is (3, 3, 3))."""
  cfg = hp.get_config(str(LMBDA))
  rec = cfg.to_dict()
  rec["encoder"]["filters"] = tuple(filters)
  model, code = registry.checked_autoencoder(rec, image_shape)
  return model, cfg


def rate_weight(pixels):
  return codec_cfg.rate_weight(LMBDA, pixels)


# ----------------------------------------------------------------- noise injection
_NOISE = {}


class _RandomShim:
  def __getattr__(self, name):
    return getattr(jax.random, name)

  @staticmethod
  def uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0):
    for v in _NOISE.values():
      if tuple(v.shape) == tuple(shape):
        return v.astype(dtype)
    raise KeyError(f"no injected noise of shape {shape}")


class _JaxShim:
  random = _RandomShim()

  def __getattr__(self, name):
    return getattr(jax, name)


def inject(z_noise, y_noise):
  """Set the noise the next trace of the encoder adds (arrays or tracers, NHWC)."""
  _NOISE["z"], _NOISE["y"] = z_noise, y_noise


hyper_mod.jax = _JaxShim()  # only ae_jax.models.hyperprior's own `jax` name


# ------------------------------------------------------------------- weight port
def conv_k(w):      # torch Conv2d [out, in, kh, kw] -> Flax [kh, kw, in, out]
  return np.transpose(w, (2, 3, 1, 0))


def deconv_k(w):    # torch ConvTranspose2d [in, out, kh, kw] -> Flax (non-flipped) kernel
  return np.transpose(w[:, :, ::-1, ::-1], (2, 3, 0, 1))


CONV = {  # ours path -> (torch prefix, kind)
    ("encoder", "transform", "conv0"): ("g_a.0", "conv"),
    ("encoder", "transform", "conv1"): ("g_a.2", "conv"),
    ("encoder", "transform", "conv2"): ("g_a.4", "conv"),
    ("encoder", "h_a", "conv0"): ("h_a.0", "conv"),
    ("encoder", "h_a", "conv1"): ("h_a.2", "conv"),
    ("encoder", "h_a", "conv2"): ("h_a.4", "conv"),
    ("encoder", "h_s", "deconv0"): ("h_s.0", "deconv"),
    ("encoder", "h_s", "deconv1"): ("h_s.2", "deconv"),
    ("encoder", "h_s", "conv2"): ("h_s.4", "conv"),
    ("decoder", "deconv0"): ("g_s.0", "deconv"),
    ("decoder", "deconv1"): ("g_s.2", "deconv"),
    ("decoder", "deconv2"): ("g_s.4", "deconv"),
}
GDNS = {("encoder", "transform", "gdn0"): "g_a.1", ("encoder", "transform", "gdn1"): "g_a.3",
        ("decoder", "igdn0"): "g_s.1", ("decoder", "igdn1"): "g_s.3"}


def mapping(n_layers=5):
  """[(ours path tuple, torch name, fn torch->ours array)] for every parameter."""
  out = []
  for path, (pre, kind) in CONV.items():
    out.append((path + ("kernel",), pre + ".weight", conv_k if kind == "conv" else deconv_k))
    out.append((path + ("bias",), pre + ".bias", lambda a: a))
  for path, pre in GDNS.items():
    out.append((path + ("beta",), pre + ".beta", lambda a: a))
    out.append((path + ("gamma",), pre + ".gamma", lambda a: a))
  eb = "entropy_bottleneck"
  for i in range(n_layers):
    out.append((("encoder", "prior", f"matrix{i}"), f"{eb}.matrices.{i}", lambda a: a))
    # ours computes h @ softplus(M) + (bias - 0.5): stored bias = CompressAI's + 0.5
    out.append((("encoder", "prior", f"bias{i}"), f"{eb}.biases.{i}", lambda a: a[..., 0] + 0.5))
    if i < n_layers - 1:
      out.append((("encoder", "prior", f"factor{i}"), f"{eb}.factors.{i}", lambda a: a[..., 0]))
  return out


def grad_mapping(n_layers=5):
  """As `mapping`, for gradients (the bias offset does not change a gradient)."""
  return [(p, t, (lambda a: a[..., 0]) if "prior" in p and p[-1].startswith("bias") else f)
          for p, t, f in mapping(n_layers)]


def set_path(tree, path, value):
  d = tree
  for k in path[:-1]:
    d = d[k]
  assert d[path[-1]].shape == value.shape, (path, d[path[-1]].shape, value.shape)
  d[path[-1]] = jnp.asarray(value, jnp.float32)


def get_path(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def port(params, torch_params, n_layers=5):
  """A copy of `params` (a dict tree) holding the torch weights {torch name: array}."""
  params = jax.tree_util.tree_map(lambda a: a, jax.device_get(params))
  params = _unfreeze(params)
  used = set()
  for path, tname, fn in mapping(n_layers):
    set_path(params, path, np.asarray(fn(torch_params[tname]), np.float32))
    used.add(tname)
  missing = [n for n in torch_params if n not in used]
  return params, missing


def _unfreeze(tree):
  if hasattr(tree, "items"):
    return {k: _unfreeze(v) for k, v in tree.items()}
  return tree


def nchw_to_nhwc(a):
  return np.transpose(a, (0, 2, 3, 1))


def rel(a, b):
  """max |a - b| / max |b| (b the reference)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = np.abs(a - b).max()
  s = np.abs(b).max()
  return d / s if s > 0 else d
