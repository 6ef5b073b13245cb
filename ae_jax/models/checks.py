"""Checks a module runs on its own fields (in `__post_init__`), so that a bad value in a
config is refused at start-up with the field's name, not deep inside `jit`.

A check raises `BadField(field, requirement)`; `ae_jax.models.registry` turns it into one
`UserError` line naming the config field (`encoder.features`). A user's module may use
these too (or raise `BadField` itself).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu, "elu": nn.elu,
               "tanh": jnp.tanh, "sigmoid": nn.sigmoid, "linear": lambda x: x}
DTYPES = ("float32", "bfloat16")
# Kernel initializers by name: Flax's default (lecun_normal), Keras' (glorot_uniform), and
# PyTorch's nn.Linear default ('torch': U(+-1/sqrt(fan_in)), kaiming_uniform(a=sqrt(5));
# its bias is drawn too, by ae_jax/models/linear.py, where the fan_in is known).
INITIALIZERS = {"lecun_normal": nn.initializers.lecun_normal(),
                "glorot_uniform": nn.initializers.glorot_uniform(),
                "he_normal": nn.initializers.he_normal(),
                "torch": nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")}


class BadField(ValueError):
  """A module field holds a value it cannot use."""

  def __init__(self, field: str, requirement: str):
    super().__init__(f"{field} must be {requirement}")
    self.field, self.requirement = field, requirement


# The largest integer a field may hold: sizes and step counts reach jitted code as int32
# (a larger one raised OverflowError from inside jit); a size that large does not fit in
# memory anyway (ae_jax/models/footprint.py says so, with the bytes it would need).
MAX_INT = 2**31 - 1
TOO_LARGE = f"at most {MAX_INT} (2**31 - 1: the jitted code takes int32)"
MAX_FLOAT32 = 3.4028234663852886e38  # a larger number is inf in float32


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def int_at_most(module: nn.Module, field: str, lo: int, requirement: str) -> None:
  """An integer field >= `lo` (else `requirement`) and at most MAX_INT."""
  v = getattr(module, field)
  if not (_is_int(v) and v >= lo):
    raise BadField(field, requirement)
  if v > MAX_INT:
    raise BadField(field, f"{requirement}, {TOO_LARGE}")


def positive_int(module: nn.Module, field: str) -> None:
  int_at_most(module, field, 1, "a positive integer")


def positive_ints(module: nn.Module, field: str, allow_empty: bool = True) -> None:
  v = getattr(module, field)
  requirement = "a tuple of positive integers" + ("" if allow_empty else ", at least one")
  ok = isinstance(v, Sequence) and not isinstance(v, str) and all(
      _is_int(x) and x >= 1 for x in v) and (allow_empty or len(v) > 0)
  if not ok:
    raise BadField(field, requirement)
  if any(x > MAX_INT for x in v):
    raise BadField(field, f"{requirement}, each {TOO_LARGE}")


def one_of(module: nn.Module, field: str, choices: Sequence[str]) -> None:
  if getattr(module, field) not in choices:
    raise BadField(field, f"one of {tuple(choices)}")


def activation(module: nn.Module, field: str):
  """The function a field names (one of ACTIVATIONS)."""
  one_of(module, field, tuple(ACTIVATIONS))
  return ACTIVATIONS[getattr(module, field)]


def initializer(module: nn.Module, field: str = "kernel_init"):
  """The initializer a field names (one of INITIALIZERS)."""
  one_of(module, field, tuple(INITIALIZERS))
  return INITIALIZERS[getattr(module, field)]


def image_shape(module: nn.Module, field: str = "image_shape") -> None:
  v = getattr(module, field)
  if not (isinstance(v, Sequence) and len(v) == 3 and all(_is_int(x) and x >= 1 for x in v)):
    raise BadField(field, "(height, width, channels), three positive integers")


def compute_dtype(dtype: Any) -> Any:
  """The jnp dtype a config's dtype name stands for."""
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
