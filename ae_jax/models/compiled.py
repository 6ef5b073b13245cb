"""Jitted applies of restored modules for the tools (compress, rate_distortion, ...).

`compiled.apply(method)(module, variables, *args)` is `module.apply(variables, *args,
method=method)` under one `jax.jit` per process and kind of call, with the module a static
argument and the variables an ordinary one:
  * equal modules (Flax modules are dataclasses: the same fields) share one trace and one
    compile per input shape, so a tool coding image after image, or a run restored twice,
    traces once;
  * the weights are never baked into the program as constants, as a `jax.jit(lambda x:
    module.apply(variables, x))` does: XLA compiles large constants slowly, and a program
    with other constants is another program, for the persistent compilation cache too.
"""
from __future__ import annotations

import functools

import jax


def _call(module, variables, *args, method, sigmoid, reported):
  if reported:
    out, state = module.apply(variables, *args, method=method, mutable=[reported[0]])
    return out, state[reported[0]][reported[1]][0]
  out = module.apply(variables, *args, method=method)
  return jax.nn.sigmoid(out) if sigmoid else out


@functools.lru_cache(maxsize=None)
def apply(method: str | None = None, *, sigmoid: bool = False,
          reported: tuple[str, str] | None = None, static: tuple[int, ...] = ()):
  """The jitted f(module, variables, *args): module.apply(variables, *args, method=method),
  its sigmoid (`sigmoid`: a decoder's logits as images), or (output, the value it sowed in
  collection/name `reported`, e.g. ('losses', 'rate')); `static`: indices of *args (from
  0) that are static (hashable) arguments."""
  fn = functools.partial(_call, method=method, sigmoid=sigmoid, reported=reported)
  return jax.jit(fn, static_argnums=(0, *(2 + i for i in static)))
