"""JAX's persistent compilation cache, on by default for the command-line runs.

The conv model's train step takes ~3 s to compile on the 2-core AVX2 dev machine, most of a
run's start-up; with the executable on disk a rerun (a resumed run, a sweep, the same config
again) loads it instead: the first conv step finished 3.3 s after the process started
instead of 7.2 s (benchmarks/results/20261128-011505.md, docs/performance.md). JAX keys each entry on the computation, jaxlib
version, XLA flags and device, so a stale entry is never used.

`launch.py` calls `enable` before anything compiles (JAX decides at its first compile
whether a cache is used); notebooks can call it too, or set JAX_COMPILATION_CACHE_DIR.
"""
from __future__ import annotations

import os
import sys
import warnings

import jax

from ae_jax.core.errors import UserError, describe, disk_errno

DEFAULT_DIR = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "ae_jax", "jax")
MIN_COMPILE_SECONDS = 0.2  # JAX's default (1 s) would leave out the init and eval steps


def enable(path: str | None = DEFAULT_DIR, *, explicit: bool = False) -> str | None:
  """Uses `path` as JAX's compilation cache; returns the directory in use (None: off).

  A cache directory JAX already has (JAX_COMPILATION_CACHE_DIR, jax.config) is kept unless
  `explicit`. '' or None turns the cache off. A directory that cannot be created or
  written is a UserError when the user named it, and a one-line warning (no cache) when it
  is the default.
  """
  current = jax.config.jax_compilation_cache_dir
  if not explicit and current:
    _cache_short_compiles()
    _whole_entries(current)
    return current
  if not path:
    jax.config.update("jax_enable_compilation_cache", False)
    return None
  path = os.path.abspath(os.path.expanduser(path))
  try:
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
      raise PermissionError(f"{path} is not writable")
  except OSError as e:
    if explicit:
      raise UserError(f"cannot use compilation cache directory {path} ({e.strerror or e}): "
                      "give a writable one, or --compilation_cache_dir= to turn it off") from e
    print(f"warning: no compilation cache ({path}: {e.strerror or e})", file=sys.stderr)
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  _cache_short_compiles()
  _whole_entries(path)
  return path


def _whole_entries(path: str) -> None:
  """JAX writes an entry in place (`LRUCache.put`: `Path.write_bytes`), and never again
  once it exists: an entry a full disk cut short made every later run warn that it cannot
  read it ('incomplete or truncated stream', two lines per step) and compile anew. Here a
  write that fails removes its entry, and JAX's two-line warning per entry becomes one
  line per process. (JAX's private class: where it is not found, nothing changes.)"""
  try:
    from jax._src import lru_cache  # pylint: disable=import-outside-toplevel
    put, suffixes = lru_cache.LRUCache.put, (lru_cache._CACHE_SUFFIX, lru_cache._ATIME_SUFFIX)  # pylint: disable=protected-access
  except (ImportError, AttributeError):
    return
  if getattr(put, "ae_jax_whole", False):
    return
  warned = []

  def whole_put(self, key: str, value: bytes) -> None:
    try:
      put(self, key, value)
    except Exception as e:
      for suffix in suffixes:
        try:
          os.remove(os.path.join(os.fspath(self.path), f"{key}{suffix}"))
        except OSError:
          pass
      if not warned:
        warned.append(e)
        reason = os.strerror(disk_errno(e)) if disk_errno(e) else describe(e)
        print(f"warning: cannot write the compilation cache to {path}: {reason}: going on "
              "without it (free space there, or --compilation_cache_dir= turns it off)",
              file=sys.stderr)
      raise
  whole_put.ae_jax_whole = True
  lru_cache.LRUCache.put = whole_put
  warnings.filterwarnings("ignore", "Error writing persistent compilation cache entry")


def _cache_short_compiles() -> None:
  """Caches compiles from MIN_COMPILE_SECONDS on, in whichever directory is in use."""
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # the user's choice stays
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
