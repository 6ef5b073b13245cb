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
LAMBDAS=$(python -c "from configs import codec; print(' '.join(map(str, codec.LAMBDAS)))")
runs=()
for l in $LAMBDAS; do
  [ -d runs/codec/$l/checkpoints ] || python launch.py --config configs/codec.py:$l \
    --workdir runs/codec/$l --config.progress_bar=False > runs/codec/$l.log 2>&1 \
    || { echo "lambda $l failed: runs/codec/$l.log"; exit 1; }
  runs+=(--workdir runs/codec/$l)
done
WIDE=$(python -c "from configs import codec_wide; print(' '.join(map(str, codec_wide.LAMBDAS)))")
for l in $WIDE; do
  [ -d runs/codec_wide/$l/checkpoints ] || python launch.py --config configs/codec_wide.py:$l \
    --workdir runs/codec_wide/$l --config.progress_bar=False > runs/codec_wide/$l.log 2>&1 \
    || { echo "lambda $l failed: runs/codec_wide/$l.log"; exit 1; }
  runs+=(--workdir runs/codec_wide/$l)
done
for k in 8 16 32 64 128; do
  [ -d runs/dense_k/K$k/checkpoints ] || python launch.py --config configs/dense.py \
    --config.encoder.latent_dim=$k --workdir runs/dense_k/K$k --config.progress_bar=False \
    > runs/dense_k/K$k.log 2>&1 || { echo "K=$k failed: runs/dense_k/K$k.log"; exit 1; }
  runs+=(--workdir runs/dense_k/K$k)
done
extra=()
for f in ${CODEC_EXTRA:-}; do extra+=(--extra "$f"); done
python -m ae_jax.rate_distortion "${runs[@]}" "${extra[@]}" --out runs/codec_rd --overwrite
