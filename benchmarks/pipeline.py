"""Which input pipeline feeds ae_jax's train step fastest, per model, on this machine.

  python benchmarks/pipeline.py [--steps 100] [--epochs 3]

Runs `train_and_evaluate` on real Fashion-MNIST for each (model, pipeline, steps_per_call)
and prints the median train seconds per step over the epochs after the first (which
compiles). The automatic choice in ae_jax/training/train.py (`_steps_per_call`) follows this table.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # pylint: disable=wrong-import-position

from ae_jax.training import train  # pylint: disable=wrong-import-position
from configs import conv, dense  # pylint: disable=wrong-import-position

VARIANTS = [("stream", 1), ("device", 1), ("device", 8), ("device", 32), ("device", 128)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--models", default="dense,conv")
  parser.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  print("| model | pipeline | steps/call | ms/step (median) | images/s |")
  print("|---|---|---|---|---|")
  for name in args.models.split(","):
    for pipeline, per_call in VARIANTS:
      config = {"dense": dense, "conv": conv}[name].get_config()
      config.data_dir = args.data_dir
      config.input_pipeline, config.steps_per_call = pipeline, per_call
      config.num_epochs, config.steps_per_epoch = args.epochs, args.steps
      config.eval_examples, config.progress_bar = 1000, False
      with tempfile.TemporaryDirectory() as workdir:
        train.train_and_evaluate(config, workdir)
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
          rows = [json.loads(line) for line in f]
      ms = statistics.median(r["seconds"] for r in rows[1:]) / args.steps * 1000
      print(f"| {name} | {pipeline} | {per_call} | {ms:.2f} | {128 / ms * 1000:.0f} |",
            flush=True)


if __name__ == "__main__":
  main()
