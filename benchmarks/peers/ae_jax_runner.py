"""ae_jax itself as a benchmark runner: `train_and_evaluate` in-process with configs/<model>.py.

  python benchmarks/peers/ae_jax_runner.py --model conv --epochs 1 --steps_per_epoch 20
  python benchmarks/peers/ae_jax_runner.py --model sparse --epochs 3

The real config (its model, batch size, noise, loss weights), only the epochs, steps per
epoch and seed overridden. Reads per-epoch `seconds` and the val losses from
WORKDIR/metrics.jsonl (a fresh temporary workdir) and prints one JSON line (see common.py):
the final val loss is the reconstruction BCE (`val_reconstruction` where the model adds
terms, as sparse does; its `val_loss`, the objective, is reported beside it). The tfds data lives in a persistent
--data_dir (default ~/tensorflow_datasets), so it is prepared by the first run only.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
DATA_DIR = os.environ.get("AE_JAX_BENCH_DATA_DIR", "~/tensorflow_datasets")
CONFIGS = {m: m for m in common.MODELS}  # configs/<model>.py

import importlib  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax.training import compile_cache, train  # noqa: E402


def _hook_first_epoch() -> dict:
  """Records when the first epoch starts (its progress bar is made just before step 1) and
  when the first jit call's steps are done (the bar's first update).

  Best effort: if train.py stops using tqdm, setup_seconds is reported as None.
  """
  seen = {}
  tqdm_mod = getattr(train, "tqdm", None)
  if tqdm_mod is None or not hasattr(tqdm_mod, "tqdm"):
    return seen
  original = tqdm_mod.tqdm

  class _Timed(original):
    def __init__(self, *args, **kwargs):
      seen.setdefault("setup_seconds", common.since_start())
      super().__init__(*args, **kwargs)

    def update(self, n=1):  # called once a jit call's losses are back: its steps are done
      seen.setdefault("first_step_seconds", common.since_start())
      return super().update(n)

  tqdm_mod.tqdm = _Timed
  return seen


def main() -> None:
  args = common.parse_args(__doc__.splitlines()[0])
  config = importlib.import_module(f"configs.{CONFIGS[args.model]}").get_config()
  if config.batch_size != common.batch_size(args.model):
    raise SystemExit(f"configs/{CONFIGS[args.model]}.py trains with batch "
                     f"{config.batch_size}, the peers with {common.batch_size(args.model)}: "
                     "update common.BATCH_SIZES")
  config.progress_bar = False
  config.num_epochs = args.epochs
  config.seed = args.seed
  config.data_dir = os.path.expanduser(DATA_DIR)
  if args.steps_per_epoch:
    config.steps_per_epoch = args.steps_per_epoch
  seen = _hook_first_epoch()
  compile_cache.enable()  # as launch.py does (JAX_COMPILATION_CACHE_DIR, from run.py, wins)
  with tempfile.TemporaryDirectory(prefix="ae_jax_bench_") as tmp:
    workdir = os.path.join(tmp, "run")
    state = train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f if line.strip()]
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  steps = rows[0]["step"] if rows else 0
  last = rows[-1]
  common.emit(common.result(
      framework="ae_jax", model=args.model, epoch_seconds=[r["seconds"] for r in rows],
      final_val_loss=last.get("val_reconstruction", last["val_loss"]), num_params=num_params,
      steps=steps, setup_seconds=seen.get("setup_seconds"),
      first_step_seconds=seen.get("first_step_seconds"),
      final_val_objective=last["val_loss"] if "val_reconstruction" in last else None))


if __name__ == "__main__":
  main()
