#!/usr/bin/env bash
# End-to-end check of the command line on a lent GPU machine: launch.py's default dense and
# denoise commands (train.py's accelerator paths: a whole epoch per jit call, orbax writes
# overlapping the next epoch), then the denoise command again (it must find the finished
# run). Those machines have JAX but no TensorFlow/tfds, so the dataset travels as the dev
# machine's tfds-prepared Fashion-MNIST: its .npy caches plus ae_jax's record, which
# data.Source reads without tfds.
#
#   bash scripts/gpu_launch_check.sh prepare   # here: ~/tensorflow_datasets -> .gpudata/
#   bash scripts/gpu_launch_check.sh run       # there ($OUT set), carrying .whl and .gpudata
#
# .whl holds the wheels the machine lacks (ml_collections, dm-pix); .gpudata and .whl are
# ignored by git (.git/info/exclude). Outputs in $OUT: each command's log (with its whole
# time), metrics.jsonl and picture grid. A quick try anywhere: EXTRA_FLAGS="--config.num_epochs=1
# --config.steps_per_epoch=20" OUT=/tmp/out bash scripts/gpu_launch_check.sh run
set -u
case "${1:-}" in
  prepare)
    src=$(python3 -c 'import json,os; print(json.load(open(os.path.expanduser(
      "~/tensorflow_datasets/ae_jax_prepared/fashion_mnist.v2.json")))["data_dir"])') || {
      echo "no prepared fashion_mnist: run launch.py once first"; exit 1; }
    mkdir -p .gpudata
    for s in train test; do gzip -1 -c "$src/$s.images.npy" > ".gpudata/$s.images.npy.gz"; done
    du -sh .gpudata ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
    export PYTHONUNBUFFERED=1
    D=/tmp/tfds/idx_images/fashion_mnist/1.1.0
    mkdir -p $D /tmp/tfds/ae_jax_prepared /tmp/runs
    for s in train test; do gunzip -c .gpudata/$s.images.npy.gz > $D/$s.images.npy; done
    echo "{\"data_dir\": \"$D\", \"image_shape\": [28, 28, 1], \"splits\": {\"train\": 60000, \"test\": 10000}, \"builder\": \"idx_images\", \"version\": \"1.1.0\"}" \
      > /tmp/tfds/ae_jax_prepared/fashion_mnist.v2.json
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
    TIMEFORMAT="whole command %R s"
    for c in dense denoise; do
      { time python3 launch.py --config configs/$c.py --config.data_dir=/tmp/tfds ${EXTRA_FLAGS:-} \
          --workdir /tmp/runs/$c > "$OUT/$c.log" 2>&1; echo "rc=$?" >> "$OUT/$c.log"; } \
        2>> "$OUT/$c.log"
      cp /tmp/runs/$c/metrics.jsonl "$OUT/$c.metrics.jsonl"
      cp /tmp/runs/$c/images/reconstructions.png "$OUT/$c.png"
    done
    { time python3 launch.py --config configs/denoise.py --config.data_dir=/tmp/tfds ${EXTRA_FLAGS:-} \
        --workdir /tmp/runs/denoise > "$OUT/rerun.log" 2>&1; echo "rc=$?" >> "$OUT/rerun.log"; } \
      2>> "$OUT/rerun.log"
    for f in "$OUT"/*.log; do echo "== $f"; tail -n 4 "$f"; done ;;
  *)
    echo "usage: bash scripts/gpu_launch_check.sh prepare|run"; exit 2 ;;
esac
