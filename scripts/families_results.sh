#!/bin/bash
# The README's "what a code is good for" table and sample-quality rows (issue #31): every
# family's config trained at its default epochs into $OUT/<name> (reused when already
# trained; logs with /usr/bin/time -v's peak RSS in $OUT/<name>.log), the Fashion-MNIST
# classifier, the Fréchet distance in its features for every family with a prior to sample
# (rae draws from its ex-post mixture, as `sample` does), and one code table over all the
# runs with raw pixels and PCA at each code size. Run from the repo root:
#   bash scripts/families_results.sh
# OUT=DIR (default runs/families); EPOCHS=N shortens every run (a smoke pass);
# WIDE_EPOCHS=N for conv_wide (default 5 of its config's 30: ~50 min at full length here);
# HYPERPRIOR=WORKDIR uses that trained hyperprior run instead of training one (8 epochs).
set -u
OUT=${OUT:-runs/families}
mkdir -p "$OUT"
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--config.num_epochs=$EPOCHS)
specs=(
  "dense configs/dense.py"
  "deep configs/deep.py"
  "sparse configs/sparse.py"
  "conv configs/conv.py"
  "conv_wide configs/conv_wide.py --config.num_epochs=${WIDE_EPOCHS:-5}"
  "vae configs/vae.py"
  "vqvae configs/vqvae.py"
  "codec configs/codec.py"
  "iwae configs/iwae.py"
  "vamp configs/vamp.py"
  "beta_tc_vae configs/beta_tc_vae.py"
  "wae configs/wae.py"
  "rae configs/rae.py"
  "aae configs/aae.py"
)
runs=()
for spec in "${specs[@]}"; do
  set -- $spec; name=$1; shift
  if [ ! -d "$OUT/$name/checkpoints" ]; then
    /usr/bin/time -v python launch.py --config "$@" "${epochs[@]}" --workdir "$OUT/$name" \
      --config.progress_bar=False > "$OUT/$name.log" 2>&1 \
      || { echo "$name failed: $OUT/$name.log"; exit 1; }
  fi
  echo "$name: trained"
  runs+=(--workdir "$OUT/$name")
done
hyper=${HYPERPRIOR:-$OUT/hyperprior}
if [ ! -d "$hyper/checkpoints" ]; then
  python launch.py --config configs/hyperprior.py "${epochs[@]}" --workdir "$hyper" \
    --config.progress_bar=False > "$OUT/hyperprior.log" 2>&1 \
    || { echo "hyperprior failed: $OUT/hyperprior.log"; exit 1; }
fi
runs+=(--workdir "$hyper")

[ -f "$OUT/classifier/classifier.json" ] \
  || python -m ae_jax.classifier --out "$OUT/classifier" > "$OUT/classifier.log" 2>&1 \
  || { echo "classifier failed: $OUT/classifier.log"; exit 1; }
for name in vae iwae vamp beta_tc_vae wae rae aae; do
  python -m ae_jax.frechet --workdir "$OUT/$name" --classifier "$OUT/classifier" \
    --out "$OUT/$name.fd.json" --overwrite > "$OUT/$name.fd.log" 2>&1 \
    || { echo "frechet $name failed: $OUT/$name.fd.log"; exit 1; }
  echo "$name: $(head -n 2 "$OUT/$name.fd.log" | tr '\n' ' ')"  # the two distances
done
/usr/bin/time -v python -m ae_jax.code_table "${runs[@]}" > "$OUT/code_table.md.tmp" \
  2> "$OUT/code_table.log" && mv "$OUT/code_table.md.tmp" "$OUT/code_table.md" \
  || { echo "code_table failed: $OUT/code_table.log"; exit 1; }
cat "$OUT/code_table.md"
