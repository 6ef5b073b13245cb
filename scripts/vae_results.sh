#!/bin/bash
# The README's VAE results: configs/vae.py and configs/beta_vae.py at their default 30
# epochs (logs and /usr/bin/time -v's peak RSS in runs/<name>.log), then each run's
# importance-sampled NLL on the 10,000 test images (K = 200) and 64 prior samples; and a
# 2-dim VAE for the manifold picture. Run from the repo root.
set -u
for spec in "vae configs/vae.py" "beta_vae configs/beta_vae.py" \
            "vae2d configs/vae.py --config.encoder.latent_dim=2"; do
  set -- $spec; name=$1; shift
  /usr/bin/time -v python launch.py --config "$@" --workdir runs/$name \
    --config.progress_bar=False > runs/$name.log 2>&1
  echo "$name: exit $?"
  /usr/bin/time -v python -m ae_jax.likelihood --workdir runs/$name > runs/$name.nll.md \
    2> runs/$name.nll.log
  python -m ae_jax.sample --workdir runs/$name --out runs/$name/samples.png --overwrite
done
python -m ae_jax.sample --workdir runs/vae2d --out runs/vae2d/manifold.png --manifold --overwrite
