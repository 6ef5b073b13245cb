#!/bin/bash
# docs/compression.md's photographs (issue #29): configs/hyperprior_photo.py trained at each
# lambda of its LAMBDAS on the train split of scripts/photographs.py's folder (Debian's
# mate-backgrounds photographs, as tiles), then every run measured on the test split
# (scikit-image's photographs, each whole, each its own file) against JPEG, WebP, AVIF and
# PNG files of the same images (rate_distortion --whole: bits per pixel; BD-rates in
# runs/photo_rd/rd_bd.md). Runs already trained are reused. From the repo root:
#   python scripts/photographs.py --out ~/data/photographs    # once
#   bash scripts/photo_results.sh
# PHOTOS=DIR names another folder; EPOCHS=N shortens (or lengthens) every run.
set -u
photos=${PHOTOS:-$HOME/data/photographs}
[ -d "$photos/train" ] || { echo "no $photos/train: run python scripts/photographs.py --out $photos"; exit 2; }
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--config.num_epochs=$EPOCHS)
runs=()
mkdir -p runs/photo
lambdas=$(python -c "from configs import hyperprior_photo as c; print(' '.join(map(str, c.LAMBDAS)))") \
  || { echo "python cannot read configs/hyperprior_photo.py: activate ae_jax's environment"; exit 1; }
for l in $lambdas; do
  [ -d runs/photo/$l/checkpoints ] || python launch.py --config configs/hyperprior_photo.py:$l \
    --config.dataset=folder:$photos --workdir runs/photo/$l --config.progress_bar=False \
    "${epochs[@]}" > runs/photo/$l.log 2>&1 || { echo "photo $l failed: runs/photo/$l.log"; exit 1; }
  runs+=(--workdir runs/photo/$l)
done
python -m ae_jax.rate_distortion "${runs[@]}" --whole --out runs/photo_rd --overwrite
