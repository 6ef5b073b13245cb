"""ae_jax: dense, convolutional and denoising autoencoders in JAX/Flax."""
from ae_jax import xla_flags as _xla_flags

_xla_flags.apply_cpu_defaults()  # before JAX starts its backends (see ae_jax/xla_flags.py)

__version__ = "0.1.0"
