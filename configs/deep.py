"""Deep dense autoencoder 784-128-64-32-64-128-784 (relu) on Fashion-MNIST: the Keras blog's
"deep autoencoder" ("Building Autoencoders in Keras": 100 epochs, batch 256, Adam, BCE),
with Keras' kernel initializer (glorot_uniform) as the blog's models have.

Run:   python launch.py --config configs/deep.py
Measured on the 2-core Intel Xeon machine (README "Results"): after 100 epochs val BCE
0.2738, val PSNR 21.01 dB, SSIM 0.708 (the lecture's dense 64: 0.2757, 21.08 dB with twice
the code; 2026-12-07, the splits in their files' order); 0.42 s per epoch (median), 1 min
17 s for the whole command (2026-12-02).
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (128, 64), "latent_dim": 32, "activation": "relu",
       "code_activation": "relu", "kernel_init": "glorot_uniform"})
  config.decoder = ml_collections.ConfigDict(
      {"name": "mlp", "hidden": (64, 128), "activation": "relu",
       "kernel_init": "glorot_uniform"})
  config.num_epochs = 100
  config.batch_size = 256
  return config
