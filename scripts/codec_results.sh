#!/bin/bash
# docs/compression.md's learned-codec curve: configs/codec.py trained at each lambda of
# configs/codec.py's LAMBDAS (10 epochs each, as the CompressAI peer; logs in
# runs/codec/<lambda>.log), then every run measured on the whole 10k test split against
# JPEG, WebP, AVIF, PNG and the lecture's K-sweep codecs (runs/sweep, when present) and the
# CompressAI rows (--extra, when present), into runs/codec_rd. Run from the repo root.
set -u
LAMBDAS=$(python -c "from configs import codec; print(' '.join(map(str, codec.LAMBDAS)))")
runs=()
for l in $LAMBDAS; do
  python launch.py --config configs/codec.py:$l --workdir runs/codec/$l \
    --config.progress_bar=False > runs/codec/$l.log 2>&1 || { echo "lambda $l failed"; exit 1; }
  runs+=(--workdir runs/codec/$l)
done
extra=()
for f in ${CODEC_EXTRA:-}; do extra+=(--extra "$f"); done
for k in runs/sweep/runs/K*; do [ -d "$k" ] && runs+=(--workdir "$k"); done
python -m ae_jax.rate_distortion "${runs[@]}" "${extra[@]}" --out runs/codec_rd --overwrite
