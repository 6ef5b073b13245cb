#!/bin/bash
# The README's VQ-VAE results: configs/vqvae.py at its default 5 epochs (log and
# /usr/bin/time -v's peak RSS in runs/vqvae.log), the test split through the index codes
# (encode, then decode against the originals: PSNR/SSIM of what a user gets back), the
# rate-distortion table beside PNG and JPEG, and the reconstructions picture (the run's
# own images/reconstructions.png: first 10 test images, originals over restored).
# Run from the repo root.
set -u
/usr/bin/time -v python launch.py --config configs/vqvae.py --workdir runs/vqvae \
  --config.progress_bar=False > runs/vqvae.log 2>&1
echo "vqvae: exit $?"
python -m ae_jax.compress encode --workdir runs/vqvae --dataset fashion_mnist --split test \
  --out runs/vqvae/test.aec --overwrite
python -m ae_jax.compress decode --workdir runs/vqvae --codes runs/vqvae/test.aec \
  --dataset fashion_mnist --split test --out runs/vqvae/test_restored --overwrite
python -m ae_jax.rate_distortion --workdir runs/vqvae --out runs/vqvae/rd --overwrite
cp runs/vqvae/images/reconstructions.png docs/vqvae_reconstructions.png
