"""What a model needs in memory, from shapes alone: refuses, before anything is compiled or
allocated, a model whose parameters or activations cannot fit.

Without this check a config such as `encoder.kernel_size=1000` (a convnet: 25 GB of
parameters) ended in a 26-line `RESOURCE_EXHAUSTED: Out of memory` traceback from XLA, and
a VAE of `latent_dim=100000000` (800 GB) sat at 0 % CPU for 14 minutes while its
initialization was being allocated.

The estimate is a lower bound, so that a model which fits is never refused: the
parameters with Adam's two moments (3x the parameters, all float32), plus the largest
single array the forward pass makes at the largest batch (traced with `jax.make_jaxpr`,
shapes only: no compute, no allocation). XLA needs more than that (it keeps the forward
pass's arrays for the backward pass, and scratch space): a model that passes can still run
out, which the commands then report in one line (`errors.out_of_memory`).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from ae_jax.core.errors import UserError, format_bytes

# Copies of the parameters a training run holds at once: the parameters and Adam's first
# and second moments (optax.adam), float32 whatever the compute dtype.
STATE_COPIES = 3


@dataclasses.dataclass(frozen=True)
class Footprint:
  """Bytes a model needs at `batch` images: `params` (float32), the largest parameter
  (`largest_param`, 'encoder/Conv_2/kernel' and its shape), and the largest single array
  of its forward pass (`largest_array`, and its shape)."""
  params: int
  largest_param: tuple[str, tuple[int, ...]]
  largest_array: int
  largest_array_shape: tuple[int, ...]
  batch: int

  @property
  def lower_bound(self) -> int:
    """Bytes training needs at the least: STATE_COPIES of the parameters and the largest
    array."""
    return STATE_COPIES * self.params + self.largest_array


def _nbytes(aval) -> int:
  shape = getattr(aval, "shape", None)
  dtype = getattr(aval, "dtype", None)
  if shape is None or dtype is None:
    return 0
  try:
    itemsize = np.dtype(dtype).itemsize
  except TypeError:  # PRNG keys and other extended dtypes: small
    return 0
  return math.prod(shape) * itemsize


def _largest_array(jaxpr) -> tuple[int, tuple[int, ...]]:
  """(bytes, shape) of the largest array any equation of `jaxpr` (or of the jaxprs inside
  it: jit, custom_jvp, scan, ...) makes."""
  best = (0, ())
  for eqn in jaxpr.eqns:
    for var in eqn.outvars:
      size = _nbytes(var.aval)
      if size > best[0]:
        best = (size, tuple(var.aval.shape))
  for sub in jax.extend.core.subjaxprs(jaxpr):
    best = max(best, _largest_array(sub), key=lambda b: b[0])
  return best


def footprint(model: nn.Module, image_shape, batch: int) -> Footprint:
  """The `Footprint` of `model` on `batch` images of `image_shape`, traced from shapes
  (once per equal model, shape and batch in a process: a resumed run, a sweep)."""
  key = (model, tuple(image_shape), int(batch))
  try:
    return _footprint(*key)
  except TypeError:  # an unhashable field in a user's module
    return _footprint.__wrapped__(*key)


@functools.lru_cache(maxsize=32)
def _footprint(model: nn.Module, image_shape: tuple, batch: int) -> Footprint:
  rngs = {"params": jax.random.key(0), "sample": jax.random.key(1)}
  x = jax.ShapeDtypeStruct((batch, *image_shape), jnp.float32)
  one = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(rngs, x), one)
  leaves = jax.tree_util.tree_leaves_with_path(variables.get("params", {}))
  params = sum(math.prod(leaf.shape) * 4 for _, leaf in leaves)  # float32
  name, leaf = max(leaves, key=lambda kv: math.prod(kv[1].shape), default=((), None))
  largest_param = ("/".join(str(getattr(k, "key", k)) for k in name),
                   tuple(leaf.shape) if leaf is not None else ())

  def forward(variables, x):
    return model.apply(variables, x, rngs=rngs, mutable=True)
  closed = jax.make_jaxpr(forward)(variables, x)
  largest, shape = _largest_array(closed.jaxpr)
  return Footprint(params, largest_param, largest, shape, batch)


def available_memory() -> tuple[int | None, str]:
  """(bytes free for new arrays or None where unknown, what they are): the first device's
  free memory where it reports it (GPUs, TPUs), else this machine's RAM free to this
  process (MemAvailable, within its cgroup's limit)."""
  device = jax.local_devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and "bytes_limit" in stats:
    free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return free, f"are free on the {device.device_kind}"
  free = _mem_available()
  limit = _cgroup_free()
  if free is None or (limit is not None and limit < free):
    free = limit
  return free, "are free on this machine"


def _mem_available() -> int | None:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return None


def _cgroup_free() -> int | None:
  """What the cgroup (v2) still lets this process allocate, or None if unlimited."""
  try:
    with open("/sys/fs/cgroup/memory.max") as f:
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current") as f:
      current = int(f.read().strip())
  except (OSError, ValueError):
    return None
  return None if limit == "max" else max(int(limit) - current, 0)


def check_fits(model: nn.Module, image_shape, batch: int, batch_fields: str,
               available: tuple[int | None, str] | None = None) -> Footprint:
  """Refuses in one `UserError` line a model whose `Footprint` on `batch` images exceeds
  the memory `available` (default: `available_memory()`), with the size it would need and
  what to lower: the model's fields when its parameters are the most of it, else
  `batch_fields` (e.g. '--config.batch_size / --config.eval_batch_size')."""
  need = footprint(model, image_shape, batch)
  free, where = available or available_memory()
  if free is None or need.lower_bound <= free:
    return need
  state = STATE_COPIES * need.params
  param_name, param_shape = need.largest_param
  if state >= need.largest_array:
    fix = (f"make the model smaller (its largest parameter is {param_name}, "
           f"{_shape(param_shape)})")
  else:
    fix = (f"lower {batch_fields} (its largest array at {batch} images: "
           f"{_shape(need.largest_array_shape)})")
  raise UserError(
      f"the model needs at least {format_bytes(need.lower_bound)} of memory to train "
      f"({format_bytes(state)} of parameters with Adam's state, {format_bytes(need.largest_array)}"
      f" its largest array) but {format_bytes(free)} {where}: {fix}")


def _shape(shape: tuple[int, ...]) -> str:
  return "x".join(map(str, shape)) or "()"
