"""ae_jax.training.compile_cache: which directory JAX caches in, and which compiles it keeps."""
import os
import subprocess
import sys

from conftest import REPO

_PROBE = ("from ae_jax import compile_cache; import jax; "
          "print(compile_cache.enable(), jax.config.jax_persistent_cache_min_compile_time_secs)")


def _enable_in_a_fresh_process(**env) -> list[str]:
  """compile_cache.enable() (launch.py's call) in a process whose environment is `env` plus
  PATH/HOME: the directory it returns and JAX's minimum compile time for caching."""
  base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
  result = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=120, check=True)
  return result.stdout.split()


def test_default_dir_caches_compiles_from_0_2_s(tmp_path):
  assert _enable_in_a_fresh_process(XDG_CACHE_HOME=str(tmp_path)) == [
      str(tmp_path / "ae_jax" / "jax"), "0.2"]


def test_users_cache_dir_is_kept_and_also_caches_compiles_from_0_2_s(tmp_path):
  # With JAX's default minimum (1 s) the init and eval steps (0.2-1 s to compile) were
  # left out of a directory set through JAX_COMPILATION_CACHE_DIR.
  assert _enable_in_a_fresh_process(JAX_COMPILATION_CACHE_DIR=str(tmp_path)) == [
      str(tmp_path), "0.2"]


def test_users_minimum_compile_time_is_kept(tmp_path):
  assert _enable_in_a_fresh_process(JAX_COMPILATION_CACHE_DIR=str(tmp_path),
                                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="3") == [
      str(tmp_path), "3.0"]
