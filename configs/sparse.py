"""Sparse autoencoder on Fashion-MNIST: the Keras blog's Dense(32, relu) code with an L1
activity penalty 1e-4 (`regularizers.l1(10e-5)`), decoder Dense(784); 100 epochs, batch 256.

Keras' kernel initializer (glorot_uniform), as the blog's: with Flax's lecun_normal the BCE
ended ~6% above the Keras and PyTorch peers after 3 epochs (benchmarks/run.py; in a PyTorch
replica 4-7 of the 32 relu code units were dead with that init, 0-1 with Keras'). The encoder reports `l1` (sum |code| per image) and `code_mean`; the objective adds
`loss_weights.l1` times the first. Without the penalty, for the blog's comparison:
    python launch.py --config configs/sparse.py --config.loss_weights.l1=0 --workdir ...

Run:   python launch.py --config configs/sparse.py
Measured on the 2-core Intel Xeon machine (README "Results"): after 100 epochs val BCE
0.2838, PSNR 19.72 dB, SSIM 0.650, mean code activation 0.706 (without the penalty:
0.2836, 19.76 dB, 4.157; 2026-12-07, the splits in their files' order); 0.29 s per epoch
(median), 1 min 3 s for the whole command (2026-12-02).
"""
import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.encoder = ml_collections.ConfigDict(
      {"name": "sparse", "hidden": (), "latent_dim": 32, "code_activation": "relu",
       "kernel_init": "glorot_uniform"})
  config.decoder = ml_collections.ConfigDict({"name": "dense", "kernel_init": "glorot_uniform"})
  config.loss_weights.l1 = 1e-4
  config.num_epochs = 100
  config.batch_size = 256
  return config
