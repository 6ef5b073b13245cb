#!/bin/bash
# docs/compression.md's learned-codec curves: configs/codec.py trained at each lambda of its
# LAMBDAS (10 epochs each, as the CompressAI peer; logs in runs/codec/<lambda>.log),
# configs/codec_wide.py at each of its LAMBDAS (30 epochs, runs/codec_wide/<lambda>), the
# lecture's dense model at K = 8..128 (10 epochs, runs/dense_k/K<k>), then every run
# measured on the whole 10k test split against JPEG, WebP, AVIF and PNG, with the CompressAI
# rows when given (CODEC_EXTRA="file.jsonl ..."; benchmarks/codec_peer.py writes them), into
# runs/codec_rd (rd.md, rd.png, rd_bd.md). Runs already trained are reused. From the repo root.
set -u
mkdir -p runs/codec runs/codec_wide runs/dense_k
runs=()
# train_each CONFIG FOLDER: a run of CONFIG per lambda of its LAMBDAS in FOLDER/<lambda>
# (reused when trained), each added to the comparison.
train_each() {
  local l
  for l in $(python -c "from configs import $1; print(' '.join(map(str, $1.LAMBDAS)))"); do
    [ -d $2/$l/checkpoints ] || python launch.py --config configs/$1.py:$l --workdir $2/$l \
      --config.progress_bar=False > $2/$l.log 2>&1 || { echo "$1 $l failed: $2/$l.log"; exit 1; }
    runs+=(--workdir $2/$l)
  done
}
train_each codec runs/codec
train_each codec_wide runs/codec_wide
for k in 8 16 32 64 128; do
  [ -d runs/dense_k/K$k/checkpoints ] || python launch.py --config configs/dense.py \
    --config.encoder.latent_dim=$k --workdir runs/dense_k/K$k --config.progress_bar=False \
    > runs/dense_k/K$k.log 2>&1 || { echo "K=$k failed: runs/dense_k/K$k.log"; exit 1; }
  runs+=(--workdir runs/dense_k/K$k)
done
extra=()
for f in ${CODEC_EXTRA:-}; do extra+=(--extra "$f"); done
python -m ae_jax.rate_distortion "${runs[@]}" "${extra[@]}" --out runs/codec_rd --overwrite
