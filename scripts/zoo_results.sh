#!/bin/bash
# The README's model-zoo results: each config at its default epochs, in turn, each with
# its log (and /usr/bin/time -v's peak RSS) in runs/<name>.log. Run from the repo root.
set -u
for spec in "deep configs/deep.py" "sparse configs/sparse.py" \
            "sparse_l1_0 configs/sparse.py --config.loss_weights.l1=0" \
            "conv_wide configs/conv_wide.py"; do
  set -- $spec; name=$1; shift
  /usr/bin/time -v python launch.py --config "$@" --workdir runs/$name \
    --config.progress_bar=False > runs/$name.log 2>&1
  echo "$name: exit $?"
done
