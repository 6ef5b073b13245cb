#!/bin/bash
# docs/compression.md's convolutional codec curves (issue #29): configs/hyperprior.py (the
# mean-scale hyperprior) and configs/codec_conv.py (the same GDN transforms with a
# factorized prior) trained at each lambda of their LAMBDAS (8 epochs each, logs in
# runs/<config>/<lambda>.log), then every run measured by its real bitstreams on the whole
# 10k test split against JPEG, WebP, AVIF and PNG, with other codecs' rows when given
# (HYPER_EXTRA="file.jsonl ..."; e.g. CompressAI's mbt2018-mean built from its own layers
# with the same architecture), into runs/hyperprior_rd (rd.md, rd.png, rd_bd.md: BD-rates
# payload against payload). Runs already trained are reused. From the repo root:
#   bash scripts/hyperprior_results.sh
# EPOCHS=2 bash scripts/hyperprior_results.sh shortens every run (a smoke pass);
# CONFIGS=hyperprior trains and compares only that config (default: both).
set -u
runs=()
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--config.num_epochs=$EPOCHS)
# train_each CONFIG FOLDER: a run of CONFIG per lambda of its LAMBDAS in FOLDER/<lambda>
# (reused when trained), each added to the comparison.
train_each() {
  local l
  mkdir -p $2
  for l in $(python -c "from configs import $1; print(' '.join(map(str, $1.LAMBDAS)))"); do
    [ -d $2/$l/checkpoints ] || python launch.py --config configs/$1.py:$l --workdir $2/$l \
      --config.progress_bar=False "${epochs[@]}" > $2/$l.log 2>&1 \
      || { echo "$1 $l failed: $2/$l.log"; exit 1; }
    runs+=(--workdir $2/$l)
  done
}
for c in ${CONFIGS:-hyperprior codec_conv}; do train_each $c runs/$c; done
extra=()
for f in ${HYPER_EXTRA:-}; do extra+=(--extra "$f"); done
python -m ae_jax.rate_distortion "${runs[@]}" "${extra[@]}" --out runs/hyperprior_rd --overwrite
