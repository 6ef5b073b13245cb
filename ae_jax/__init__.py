"""ae_jax: dense, convolutional and denoising autoencoders in JAX/Flax.

    core/         errors, files, command-line bits, losses and image metrics, plots
    models/       Linen encoders and decoders, one file per family; the registry
    data/         tfds builders and input pipelines
    training/     the loop, steps, objectives, checkpoints, workdirs, devices
    compression/  a trained run as a codec; entropy coding; classic codecs; R-D
    evaluation/   likelihood, samples, latent maps

Each package may import only those listed above it. `python -m ae_jax.<tool>` runs a tool
through a thin module here (compress, rate_distortion, sweep, out_of_domain, rd_compare,
latent, likelihood, sample).
"""
import importlib

from ae_jax.core import xla_flags as _xla_flags

_xla_flags.apply_cpu_defaults()  # before JAX starts its backends (see ae_jax/core/xla_flags.py)

__version__ = "0.1.0"

# Where the modules of the flat layout (before 2026-12-07) live now, so that user code's
# `from ae_jax import train, checkpoint` keeps working.
_MOVED = {
    **{m: "core" for m in ("errors", "files", "cli", "progress", "metrics", "quality",
                           "plots", "xla_flags")},
    **{m: "data" for m in ("idx", "idx_builder")},
    **{m: "training" for m in ("train", "steps", "objectives", "checkpoint", "workdir",
                               "parallel", "compile_cache", "config_lib")},
    **{m: "compression" for m in ("codes", "entropy_coding", "containers", "classic_codecs",
                                  "compress_cli", "bd_rate")},
}


def __getattr__(name: str):
  if name in _MOVED:
    return importlib.import_module(f"ae_jax.{_MOVED[name]}.{name}")
  raise AttributeError(f"module 'ae_jax' has no attribute {name!r}")
