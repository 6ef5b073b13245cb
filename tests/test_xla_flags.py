"""ae_jax's XLA:CPU defaults (ae_jax/core/xla_flags.py): set at import, never over a user's own."""
import os
import subprocess
import sys

import pytest

from ae_jax.core import xla_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def test_flag_is_added_only_where_known_and_not_set_by_the_user():
  assert xla_flags.with_cpu_defaults("", (0, 10)) == f"{FLAG}="
  assert xla_flags.with_cpu_defaults("--xla_foo=1", (0, 10)) == f"--xla_foo=1 {FLAG}="
  mine = f"{FLAG}=individual_dot"
  assert xla_flags.with_cpu_defaults(mine, (0, 10)) == mine  # the user's choice stays
  assert xla_flags.with_cpu_defaults("", (0, 4)) == ""  # a jaxlib that may not know it
  assert xla_flags.with_cpu_defaults("", (0, 11)) == ""  # not run here


def test_init_compile_options_only_for_a_measured_jaxlib():
  # An option the jaxlib does not know would fail the init's compile: only where measured.
  assert xla_flags.quick_compile_cpu_options((0, 10)) == {"xla_cpu_use_fusion_emitters": False}
  assert xla_flags.quick_compile_cpu_options((0, 11)) == {}
  assert xla_flags.quick_compile_cpu_options((0, 4)) == {}


def _compiled_reduction_uses_ynn(**env) -> bool:
  code = ("import ae_jax, jax, jax.numpy as jnp\n"
          "f = jax.jit(lambda x: jnp.exp(x).sum(1))\n"
          "print('__ynn_fusion' in f.lower(jnp.ones((128, 784))).compile().as_text())")
  clean = {k: v for k, v in os.environ.items()
           if k not in ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS", "AE_JAX_KEEP_XLA_FLAGS")}
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=REPO, env={**clean, "JAX_PLATFORMS": "cpu", **env}, check=True)
  return done.stdout.strip() == "True"


def test_importing_ae_jax_turns_ynn_reductions_off_before_jax_starts():
  if xla_flags._jaxlib_version() not in xla_flags.TESTED_JAXLIB:
    pytest.skip(f"jaxlib {xla_flags._jaxlib_version()}: ae_jax sets no XLA flag there "
                "(the version gate is tested above)")
  assert not _compiled_reduction_uses_ynn()
  # The opt-out leaves XLA's default, which on these versions does use YNNPACK here:
  # so the assertion above really sees the flag's effect.
  assert _compiled_reduction_uses_ynn(AE_JAX_KEEP_XLA_FLAGS="1")
