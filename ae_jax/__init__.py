"""ae_jax: dense, convolutional and denoising autoencoders in JAX/Flax."""

__version__ = "0.1.0"
