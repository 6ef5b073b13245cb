#!/bin/bash
# The README's and docs/compression.md's figures of the lecture's models: configs/dense.py,
# conv.py and denoise.py at their default epochs (logs and /usr/bin/time -v's peak RSS in
# runs/<name>.log), then the dense K=64 run as a codec: the test split's round trip at
# uint8 and float32, rate_distortion (--codecs png,jpeg: the autoencoder's rows and JPEG's;
# WebP's and AVIF's do not depend on the run), out_of_domain, latent, and the K sweep.
# Run from the repo root.
set -u
for name in dense conv denoise; do
  /usr/bin/time -v python launch.py --config configs/$name.py --workdir runs/$name \
    --config.progress_bar=False > runs/$name.log 2>&1
  echo "$name: exit $?"
done
for quant in uint8 float32; do
  python -m ae_jax.compress encode --workdir runs/dense --dataset fashion_mnist --split test \
    --quant $quant --out runs/dense/test_$quant.aec --overwrite
  python -m ae_jax.compress decode --workdir runs/dense --codes runs/dense/test_$quant.aec \
    --dataset fashion_mnist --split test --out runs/dense/restored_$quant --overwrite
done
python -m ae_jax.rate_distortion --workdir runs/dense --out runs/rd --codecs png,jpeg --overwrite
python -m ae_jax.out_of_domain --workdir runs/dense --out runs/ood --overwrite
python -m ae_jax.latent --workdir runs/dense --out runs/latent --overwrite
python -m ae_jax.sweep --out runs/sweep --epochs 5
cp runs/rd/rd.png docs/compression/rate_distortion.png
cp runs/ood/ood.png docs/compression/out_of_domain.png
cp runs/latent/latent_pca.png runs/latent/interpolation.png docs/compression/
cp runs/sweep/sweep.png docs/compression/sweep.png
cp runs/denoise/images/reconstructions.png docs/denoise_grid.png
