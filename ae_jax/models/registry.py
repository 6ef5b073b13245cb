"""Turns a config's `encoder` / `decoder` groups into Flax modules, and checks that they fit.

A group names its module and holds the module's fields:

    config.encoder = dict(name="convnet", features=(32, 64), latent_channels=8)
    config.decoder = dict(name="my_models:WideDecoder", width=64)

`name` is one of the built-in families below, or 'module:Class' for a module of the
user's own ('module' importable, or a path to a .py file). Every other key is a field
of that module (dataclass field), checked by name here and by value in the module's
`__post_init__` (ae_jax/models/checks.py). The dataset's image shape is given to a
module with an `image_shape` field the config leaves unset, and `config.dtype` to any
module with a `dtype` field. Built-in names resolve through the same 'module:Class'
mechanism as a user's, so there is one path for both.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import math
import os
import sys
import sysconfig
import traceback
from typing import Any, Mapping

import flax.linen as nn
from flax.core import FrozenDict, unfreeze
import jax
import jax.numpy as jnp

from ae_jax.core.errors import UserError, describe
from ae_jax.models import checks, footprint
from ae_jax.models.autoencoder import Autoencoder

ENCODERS = {
    "dense": "ae_jax.models.dense:DenseEncoder",     # the lecture's 784 -> K
    "mlp": "ae_jax.models.dense:MLPEncoder",         # deep: 784-128-64-32
    "sparse": "ae_jax.models.sparse:SparseEncoder",  # L1-penalized code
    "conv": "ae_jax.models.conv:ConvEncoder",        # the lecture's 28x28x1 -> (4, 4, 8)
    "convnet": "ae_jax.models.convnet:ConvNetEncoder",  # any H x W x C
    "vae": "ae_jax.models.vae:VAEEncoder",           # Gaussian q(z|x), reports `kl`
    "factorized": "ae_jax.models.codec:FactorizedPriorEncoder",  # learned codec, `rate`
    "vq": "ae_jax.models.vq:VQEncoder",              # VQ-VAE: codebook vectors, `commitment`
    "beta_tc": "ae_jax.models.beta_tc_vae:TCVAEEncoder",  # KL as MI + TC + dimension-wise KL
    "wae": "ae_jax.models.wae:WAEEncoder",           # any encoder + MMD to N(0, I), `mmd`
    "rae": "ae_jax.models.rae:RAEEncoder",           # any encoder + L2 on the code, `code_l2`
    "adversarial": "ae_jax.models.adversarial:AdversarialEncoder",  # + a discriminator
    "gdn": "ae_jax.models.gdn_transforms:GDNAnalysis",  # a codec's g_a: conv + GDN, any H x W
    "hyperprior": "ae_jax.models.hyperprior:HyperpriorEncoder",  # g_a + hyperprior, `rate`
}
DECODERS = {
    "dense": "ae_jax.models.dense:DenseDecoder",
    "mlp": "ae_jax.models.dense:MLPDecoder",
    "conv": "ae_jax.models.conv:ConvDecoder",
    "convnet": "ae_jax.models.convnet:ConvNetDecoder",
    "gdn": "ae_jax.models.gdn_transforms:GDNSynthesis",  # a codec's g_s: deconv + IGDN
}
ROLES = {"encoder": ENCODERS, "decoder": DECODERS}


def _import(module_name: str):
  if module_name.endswith(".py"):
    path = os.path.abspath(module_name)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"no file {path}")
    key = "ae_jax_user_" + os.path.splitext(os.path.basename(path))[0]
    if key not in sys.modules:
      spec = importlib.util.spec_from_file_location(key, path)
      module = importlib.util.module_from_spec(spec)
      sys.modules[key] = module
      try:
        spec.loader.exec_module(module)
      except BaseException:
        del sys.modules[key]
        raise
    return sys.modules[key]
  if os.getcwd() not in sys.path and "" not in sys.path:
    sys.path.append(os.getcwd())  # as `python -m` and the REPL do: the user's own files
  return importlib.import_module(module_name)


def _import_error(e: Exception, module_name: str, where: str) -> UserError:
  """One line for a module that could not be imported: where to put a module that was not
  found; for one that was found and raised, the user's exception where it was raised."""
  if isinstance(e, FileNotFoundError) and module_name.endswith(".py"):
    return UserError(f"{where}: {e}: give the path of a .py file (from the folder you run "
                     "in, or absolute) or 'module:Class' for a module on PYTHONPATH")
  if isinstance(e, ModuleNotFoundError) and e.name and (
      module_name == e.name or module_name.startswith(e.name + ".")):
    return UserError(f"{where}: cannot import {module_name} ({describe(e)}): put its folder "
                     "on PYTHONPATH or run from there")
  return UserError(f"{where}: importing {module_name} raised {describe(e)} "
                   f"{_raised_at(e)}: fix it there")


def _raised_at(e: BaseException) -> str:
  """'at file:line (the line)', innermost first, over the frames of the user's own files
  (not Python's, the installed packages' or ae_jax's): where an import went wrong."""
  if isinstance(e, SyntaxError) and e.filename:  # raised by the compiler: no frame of its own
    return f"at {_short_path(e.filename)}:{e.lineno}"
  frames = traceback.extract_tb(e.__traceback__)
  own = [f for f in frames if not _outside_the_users_code(f.filename)] or frames[-1:]
  parts = [f"{_short_path(f.filename)}:{f.lineno}" + (f" ({f.line})" if f.line else "")
           for f in reversed(own[-3:])]
  return "at " + ", called from ".join(parts)


_NOT_THE_USERS = tuple(os.path.realpath(p) + os.sep for p in {
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # ae_jax
    *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))})


def _outside_the_users_code(filename: str) -> bool:
  return filename.startswith("<") or os.path.realpath(filename).startswith(_NOT_THE_USERS)


def _short_path(filename: str) -> str:
  relative = os.path.relpath(filename)
  return filename if relative.startswith("..") else relative


def resolve(name: Any, role: str, label: str | None = None) -> type[nn.Module]:
  """The module class `name` stands for as an encoder or decoder (`role`; `label`: the
  config group's name in errors, `role` by default)."""
  table = ROLES[role]
  label = label or role
  target = table.get(name, name) if isinstance(name, str) else None
  if not isinstance(target, str) or ":" not in target:
    raise UserError(f"unknown {role} {name!r} (config field {label}.name): choose one of "
                    f"{sorted(table)}, or name a module of your own as 'module:Class' "
                    "(README 'Add your own model')")
  module_name, _, attr = target.partition(":")
  try:
    module = _import(module_name)
  except Exception as e:  # pylint: disable=broad-except  (the user's file may raise anything)
    raise _import_error(e, module_name, f"{label}.name {name!r}") from None
  cls = getattr(module, attr, None)
  if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
    raise UserError(f"{label}.name {name!r}: {module_name} has no Flax module (nn.Module "
                    f"class) named {attr!r}")
  return cls


def _fields(cls: type[nn.Module]) -> list[str]:
  return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


def module_fields(cls: type[nn.Module]) -> list[str]:
  """The fields a config group of module `cls` may hold (its dataclass fields)."""
  return _fields(cls)


def _tupled(value):
  """Lists (from JSON or the command line) as tuples and groups as FrozenDicts: module
  fields must be hashable."""
  if isinstance(value, Mapping) or hasattr(value, "to_dict"):
    value = value.to_dict() if hasattr(value, "to_dict") else value
    return FrozenDict({k: _tupled(v) for k, v in value.items()})
  if isinstance(value, (list, tuple)):
    return tuple(_tupled(v) for v in value)
  return value


def build(spec: Mapping, role: str, image_shape, dtype: str = "float32",
          role_label: str | None = None, detached: bool = False) -> nn.Module:
  """The encoder or decoder (`role`) a config group `spec` describes; `role_label` names
  the group in errors where it is nested in another ('encoder.analysis'); `detached`
  builds it outside any parent module (to check a nested group's fields)."""
  spec = dict(spec.to_dict() if hasattr(spec, "to_dict") else spec)
  label = role_label or role
  name = spec.pop("name", None)
  cls = resolve(name, role, label)
  fields = _fields(cls)
  takes = [f for f in fields if f != "dtype"]
  for key in spec:
    if key not in fields or key == "dtype":
      raise UserError(f"unknown config field {label}.{key}: {label} {name!r} takes "
                      + (f"{takes}" if takes else "no fields")
                      + (" (the compute dtype is config.dtype)" if key == "dtype" else ""))
  kwargs = {k: _tupled(v) for k, v in spec.items()}
  if "image_shape" in fields and "image_shape" not in kwargs:
    kwargs["image_shape"] = tuple(int(d) for d in image_shape)
  if "dtype" in fields:
    kwargs["dtype"] = checks.compute_dtype(dtype)
  try:
    return cls(**kwargs, parent=None) if detached else cls(**kwargs)
  except checks.BadField as e:
    value = kwargs
    for part in e.field.split("."):  # a field of a nested group: 'prior.components'
      value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping):  # a group (a FrozenDict prints on several lines)
      value = _plain(value)
    raise UserError(f"bad config value {label}.{e.field}={value!r}: it must be "
                    f"{e.requirement} (--config.{label}.{e.field}=...)") from None
  except (TypeError, ValueError) as e:
    raise UserError(f"{label} {name!r} refuses its fields {kwargs}: {describe(e)}") from None


def _plain(value):
  """A config group as plain dicts (its repr on one line)."""
  return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def scans_on_cpu(spec: Mapping, role: str) -> bool:
  """Whether the module a config group names runs its train steps in a scan on CPU: its
  class's `scan_on_cpu(spec)` where it has one (a wrapper asks what it wraps), else its
  SCAN_ON_CPU attribute (train._steps_per_call)."""
  cls = resolve(spec["name"], role)
  hook = getattr(cls, "scan_on_cpu", None)
  return bool(hook(spec)) if hook is not None else bool(getattr(cls, "SCAN_ON_CPU", False))


def size_multiple(record: Mapping) -> int | None:
  """The multiple of height and width that images of any size are padded to for the
  model a config (or a run's config.json record) describes, or None when it takes only
  the size it was built for. A module says it takes any size, with the same parameters,
  by a classmethod `size_multiple(spec) -> int` (the convnet family's: 2^stages, what its
  strides need; the GDN transforms' 2^levels; a wrapper's, such as the hyperprior's, its
  inner module's, or None); the model does when both halves do, and needs both multiples."""
  multiples = []
  for role in ("encoder", "decoder"):
    hook = getattr(resolve(record[role]["name"], role), "size_multiple", None)
    multiple = None if hook is None else hook(record[role])
    if multiple is None:
      return None
    multiples.append(int(multiple))
  return math.lcm(*multiples)


def make_autoencoder(record: Mapping, image_shape) -> Autoencoder:
  """decoder(encoder(x)) from a config (or a run's config.json record); not yet checked
  against the images: see `checked_autoencoder`."""
  dtype = record["dtype"] if "dtype" in record else "float32"
  return Autoencoder(encoder=build(record["encoder"], "encoder", image_shape, dtype),
                     decoder=build(record["decoder"], "decoder", image_shape, dtype))


def shape_rngs() -> dict:
  """The keys of an init that is only traced for shapes (`jax.eval_shape`): 'params', and
  'sample' for a model that samples."""
  return {"params": jax.random.key(0), "sample": jax.random.key(1)}


def _output_shape(module: nn.Module, x: jax.ShapeDtypeStruct):
  """module(x)'s shape and dtype, traced once per equal module and input (a run, its
  checks, the tools and a resume each ask again)."""
  try:
    return _traced_output_shape(module, x.shape, x.dtype)
  except TypeError:  # a module that cannot be hashed (a user's, with a list field) traces
    return _trace_output_shape(module, x)


@functools.lru_cache(maxsize=256)
def _traced_output_shape(module: nn.Module, shape: tuple, dtype):
  return _trace_output_shape(module, jax.ShapeDtypeStruct(shape, dtype))


def _trace_output_shape(module: nn.Module, x: jax.ShapeDtypeStruct):
  def run(x):
    return module.init_with_output(shape_rngs(), x)[0]
  return jax.eval_shape(run, x)


def code_shape(encoder: nn.Module, image_shape) -> tuple[int, ...]:
  """One image's code shape (no batch axis) from `encoder`, traced without computing."""
  return tuple(_output_shape(encoder, jax.ShapeDtypeStruct((1, *image_shape),
                                                           jnp.float32)).shape[1:])


def checked_autoencoder(record: Mapping, image_shape, images: str = "the images"
                        ) -> tuple[Autoencoder, tuple[int, ...]]:
  """(autoencoder, code shape), after checking, by tracing shapes only (no compute), that
  the encoder takes `image_shape` images, the decoder takes the encoder's code and gives
  back images of `image_shape`. Any mismatch is one `UserError` naming both sides. A
  training config (a `record` with batch sizes) is also refused when its model cannot fit
  in memory at its largest batch (`footprint.check_fits`), before anything is allocated."""
  model = make_autoencoder(record, image_shape)
  enc, dec = record["encoder"]["name"], record["decoder"]["name"]
  image_shape = tuple(int(d) for d in image_shape)
  x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
  try:
    z = _output_shape(model.encoder, x)
  except Exception as e:  # pylint: disable=broad-except  (any module's own complaint)
    raise UserError(f"encoder {enc!r} cannot take {images} of shape {image_shape}: "
                    f"{describe(e)}") from None
  if not hasattr(z, "shape") or z.shape[:1] != (2,):
    raise UserError(f"encoder {enc!r} must return one code per image (an array with the "
                    f"batch axis first), got {jax.tree.map(lambda a: a.shape, z)}")
  code = tuple(z.shape[1:])
  try:
    y = _output_shape(model.decoder, jax.ShapeDtypeStruct(z.shape, jnp.float32))
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"decoder {dec!r} cannot take the code of encoder {enc!r}, shape "
                    f"{code}: {describe(e)}") from None
  if not hasattr(y, "shape") or tuple(y.shape) != (2, *image_shape):
    got = tuple(y.shape[1:]) if hasattr(y, "shape") else type(y).__name__
    raise UserError(f"decoder {dec!r} turns the code {code} of encoder {enc!r} into {got}, "
                    f"not the shape of {images}, {image_shape}: change the decoder's fields")
  batch = max(record.get("batch_size") or 0, record.get("eval_batch_size") or 0)
  if batch:  # each device holds the parameters and its share of the batch
    footprint.check_fits(model, image_shape, -(-batch // jax.device_count()),
                         "--config.batch_size / --config.eval_batch_size")
  return model, code


def lecture_model(model: str, latent_dim: int = 64) -> dict:
  """The `encoder` and `decoder` groups of the lecture's 'dense' or 'conv' autoencoder."""
  if model == "dense":
    return {"encoder": {"name": "dense", "latent_dim": latent_dim}, "decoder": {"name": "dense"}}
  if model == "conv":
    return {"encoder": {"name": "conv"}, "decoder": {"name": "conv"}}
  raise ValueError(f"unknown model {model!r}; the lecture's are 'dense' and 'conv'")
