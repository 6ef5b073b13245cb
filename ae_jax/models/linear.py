"""The fully connected layer of the MLP-style models, its initialization chosen by name
(a module's `kernel_init` field, one of `checks.INITIALIZERS`).

Every name but 'torch' is a plain `nn.Dense` with that kernel initializer and Flax's zero
bias, so the defaults (lecun_normal) are the parameters they always were. 'torch' is
PyTorch's `nn.Linear` default, which pythae's networks have (the families' side-by-side,
benchmarks/peers/pythae_family.py): kernel and bias both uniform in +-1/sqrt(fan_in).
Flax hands a bias initializer no fan_in, so `TorchDense` draws the bias itself, where
the input's width is known; its parameters are named and shaped as `nn.Dense`'s.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ae_jax.models import checks


def torch_uniform(fan_in: int):
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): `nn.Linear.reset_parameters`' bias (and, the same
  bound, its kernel; the VampPrior's pseudo-inputs, ae_jax/models/priors.py)."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def inits(kernel_init: str, fan_in: int):
  """(kernel initializer, bias initializer) a `kernel_init` name gives a layer of `fan_in`
  inputs per output: 'torch' both U(+-1/sqrt(fan_in)) (PyTorch's Linear and Conv layers),
  any other name that kernel initializer and Flax's zero bias."""
  if kernel_init == "torch":
    return torch_uniform(fan_in), torch_uniform(fan_in)
  return checks.INITIALIZERS[kernel_init], nn.initializers.zeros_init()


class TorchDense(nn.Module):
  """`nn.Dense(features)` initialized as PyTorch's `nn.Linear` (kernel 'torch', bias
  `torch_uniform`): params `kernel` [fan_in, features] and `bias` [features]."""
  features: int
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param("kernel", checks.INITIALIZERS["torch"], (fan_in, self.features),
                        jnp.float32)
    bias = self.param("bias", torch_uniform(fan_in), (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    return jnp.dot(x, kernel) + bias


def dense(features: int, kernel_init: str = "lecun_normal", dtype: Any = jnp.float32,
          name: str | None = None) -> nn.Module:
  """A Dense layer initialized as `kernel_init` names (checked by the caller's
  `checks.initializer`)."""
  if kernel_init == "torch":
    return TorchDense(features, dtype=dtype, name=name)
  return nn.Dense(features, dtype=dtype, kernel_init=checks.INITIALIZERS[kernel_init],
                  name=name)
