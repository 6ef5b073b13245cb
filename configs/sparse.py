"""Sparse autoencoder on Fashion-MNIST: the Keras blog's Dense(32, relu) code with an L1
activity penalty 1e-4 (`regularizers.l1(10e-5)`), decoder Dense(784); 100 epochs, batch 256.

Keras' kernel initializer (glorot_uniform), as the blog's: with Flax's lecun_normal, 4-7 of
the 32 relu code units start dead and the BCE ends ~6% higher (benchmarks/run.py, 3
epochs). The encoder reports `l1` (sum |code| per image) and `code_mean`; the objective adds
`loss_weights.l1` times the first. Without the penalty, for the blog's comparison:
    python launch.py --config configs/sparse.py --config.loss_weights.l1=0 --workdir ...

Run:   python launch.py --config configs/sparse.py
Measured on the 2-core Intel Xeon machine (README "Results"): after 100 epochs val BCE
0.2851, PSNR 19.56 dB, SSIM 0.643, mean code activation 0.683 (without the penalty:
0.2848, 19.62 dB, 2.927); 0.49 s per epoch (median), 2 min 59 s for the whole command.
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
