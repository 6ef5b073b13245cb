"""A config of ae_jax's VAE and its research families trained by ae_jax (`train_and_evaluate`)
and scored as the pythae peer is: ae_jax's side of benchmarks/vae_vs_pythae.py.

  python benchmarks/peers/ae_jax_vae.py --epochs 30                  # configs/vae.py
  python benchmarks/peers/ae_jax_vae.py --family wae --epochs 30      # configs/wae.py
  python benchmarks/peers/ae_jax_vae.py --epochs 1 --steps_per_epoch 4 --test_images 20 \
      --num_samples 10          # a smoke run

--family picks the config (FAMILIES: vae, the default, is configs/vae.py, scored as
peers/pythae_vae.py scores pythae's; iwae, vamp, beta_tc (configs/beta_tc_vae.py), wae, rae
and aae are issue #31's research families, scored as peers/pythae_family.py scores
pythae's). The real config, only the epochs, seed (and for smoke runs the steps per epoch)
overridden, in a fresh temporary workdir; the tfds data in the persistent
AE_JAX_BENCH_DATA_DIR (default ~/tensorflow_datasets) as benchmarks/peers/ae_jax_runner.py.
Then, on the test split's images (the run's dataset, read as the device pipeline reads it:
the prepared .npy, without TensorFlow when it is prepared):
  * NLL and its standard error (vae and the likelihood families iwae, vamp, beta_tc):
    ae_jax.evaluation.likelihood.estimate, K = --num_samples (200), p(z) the encoder's own
    prior (vamp: its mixture);
  * -ELBO: metrics.jsonl's last `val_elbo` (one draw of z per image, the KL in closed
    form: pythae's VAE eval loss is the same estimator), and the K-draw mean beside it;
    for the families, where it is logged (not for wae, rae, aae);
  * the reconstructions from the posterior mean, or the deterministic code
    (`Autoencoder.reconstruct` with no 'sample' RNG, as pythae's decoder(embedding)):
    their PSNR (common.psnr_db) and, for the families, their MSE, the mean over pixels and
    images (common.mse, the pythae peer's own function);
  * seconds per epoch: metrics.jsonl's `seconds` (training only), median after the first;
  * peak RSS after training (`peak_rss_train_mb`) and at the end (`peak_rss_mb`).
--threads 1 runs XLA:CPU on one thread (its Eigen pool off); otherwise XLA's own pool
(the cores). Prints one JSON line: for vae the keys peers/pythae_vae.py prints, for a
family those of peers/pythae_family.py (and a few more).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time

# --family -> configs/<module>.py; the names are pythae_family.py's (beta_tc: beta_tc_vae.py).
CONFIGS = {"vae": "vae", "iwae": "iwae", "vamp": "vamp", "beta_tc": "beta_tc_vae",
           "wae": "wae", "rae": "rae", "aae": "aae"}
FAMILIES = tuple(CONFIGS)
LIKELIHOOD_FAMILIES = ("vae", "iwae", "vamp", "beta_tc")  # a q(z|x) and a likelihood: an NLL


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--family", choices=FAMILIES, default="vae",
                      help="configs/<family>.py (beta_tc: beta_tc_vae.py); default vae")
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--threads", type=int, default=None,
                      help="1: XLA:CPU single-threaded (default: XLA's own pool, the cores)")
  parser.add_argument("--num_samples", type=int, default=200,
                      help="importance samples K per image for the NLL (default 200; "
                           "ignored by wae, rae, aae)")
  parser.add_argument("--steps_per_epoch", type=int, default=None, help="smoke runs")
  parser.add_argument("--test_images", type=int, default=None,
                      help="only the first N test images (smoke runs)")
  parser.add_argument("--samples_out", help="write --sample_count images decoded from the "
                      "run's prior (what `python -m ae_jax.sample` draws) as .npy")
  # common.SAMPLE_COUNT: the arguments are parsed before common (the process clock) is imported
  parser.add_argument("--sample_count", type=int, default=10_000)
  return parser.parse_args()


ARGS = parse_args()
if ARGS.threads == 1:  # before jax is imported
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                             "false intra_op_parallelism_threads=1").strip()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (starts the process clock)
import ae_jax_runner  # noqa: E402  (the repo on sys.path, jax, train; its first-epoch hook)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ae_jax.training import checkpoint, compile_cache, train  # noqa: E402
from ae_jax.data import pipeline as data  # noqa: E402
from ae_jax.evaluation import likelihood  # noqa: E402


def reconstructions(workdir: str, images_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(decoder(mean of q(z|x)) or decoder(the deterministic code), x), both float32 in
  [0, 1]: `reconstruct` without the 'sample' RNG takes the mean, as pythae's peers take
  the encoder's `embedding`."""
  model, variables = checkpoint.restore_autoencoder(workdir)
  reconstruct = jax.jit(lambda v, x: model.apply(v, x, method="reconstruct"))
  x = images_u8.astype(np.float32) / 255.0
  out = np.concatenate([np.asarray(reconstruct(variables, x[i:i + 1000]))
                        for i in range(0, len(x), 1000)])
  return out, x


def train_config(family: str):
  """configs/<family>.py with this run's epochs, seed, steps and the bench data dir."""
  config = importlib.import_module(f"configs.{CONFIGS[family]}").get_config()
  config.progress_bar = False
  config.num_epochs = ARGS.epochs
  config.seed = ARGS.seed
  config.data_dir = os.path.expanduser(ae_jax_runner.DATA_DIR)
  if ARGS.steps_per_epoch:
    config.steps_per_epoch = ARGS.steps_per_epoch
  return config


def vae_record(rows: list[dict], scores: dict) -> dict:
  """configs/vae.py's keys, as peers/pythae_vae.py's record (unchanged since issue #22)."""
  nll = scores["nll"]
  return {
      "neg_elbo": -rows[-1]["val_elbo"], "val_neg_elbo_per_epoch": [-r["val_elbo"] for r in rows],
      "nll": nll["nll"], "nll_se": nll["nll_se"], "neg_elbo_k": nll["neg_elbo"],
      "num_samples": nll["num_samples"],
      "nll_seconds": scores["nll_seconds"], "psnr_db": scores["psnr_db"],
      "psnr_from": "posterior mean"}


def family_record(family: str, rows: list[dict], scores: dict) -> dict:
  """A family's keys, as peers/pythae_family.py's record: `eval_loss` (ae_jax's last
  val_loss, the objective on the test split: not always pythae's estimator, see its
  docstring), `mse`, `psnr_db`; the NLL for the likelihood families; -ELBO where logged."""
  record = {"eval_loss": rows[-1]["val_loss"], "mse": scores["mse"],
            "psnr_db": scores["psnr_db"],
            "psnr_from": "deterministic code" if family in ("wae", "rae") else "posterior mean"}
  if "nll" in scores:
    nll = scores["nll"]
    record.update(nll=nll["nll"], nll_se=nll["nll_se"], neg_elbo_k=nll["neg_elbo"],
                  num_samples=nll["num_samples"], nll_seconds=scores["nll_seconds"])
  if "val_elbo" in rows[-1]:
    record.update(neg_elbo=-rows[-1]["val_elbo"],
                  val_neg_elbo_per_epoch=[-r["val_elbo"] for r in rows])
  return record


def score(family: str, workdir: str, images: np.ndarray) -> dict:
  """The trained run on the test images: the NLL (likelihood families; the library's
  estimator) and the reconstructions' PSNR and MSE."""
  scores = {}
  if family in LIKELIHOOD_FAMILIES:
    t0 = time.perf_counter()
    scores["nll"] = likelihood.estimate(workdir, ARGS.num_samples, images_u8=images)
    scores["nll_seconds"] = time.perf_counter() - t0
  restored, x = reconstructions(workdir, images)
  scores.update(psnr_db=common.psnr_db(restored, x), mse=common.mse(restored, x))
  return scores


def main() -> None:
  family = ARGS.family
  config = train_config(family)
  seen = ae_jax_runner._hook_first_epoch()  # pylint: disable=protected-access
  compile_cache.enable()  # as launch.py does
  with tempfile.TemporaryDirectory(prefix=f"ae_jax_{family}_") as tmp:
    workdir = os.path.join(tmp, "run")
    state = train.train_and_evaluate(config, workdir)
    peak_rss_train_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f if line.strip()]
    source = data.Source(config.dataset, config.data_dir, config.idx_dir,
                         splits=(config.eval_split,))
    images = source.load_images(config.eval_split, ARGS.test_images)
    scores = score(family, workdir, images)
    if ARGS.samples_out:
      from ae_jax.evaluation import sample  # pylint: disable=import-outside-toplevel
      common.save_samples(ARGS.samples_out,
                          sample.generate(workdir, num=ARGS.sample_count, seed=ARGS.seed))
  seconds = [r["seconds"] for r in rows]
  later = seconds[1:] or seconds
  common.emit({
      "framework": "ae_jax", "model": family, "epochs": len(rows),
      "steps_per_epoch": rows[0]["step"], "threads": ARGS.threads or os.cpu_count(),
      "num_params": sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params)),
      "epoch_seconds": [round(s, 4) for s in seconds], "seconds_per_epoch": statistics.median(later),
      "first_step_seconds": seen.get("first_step_seconds"),
      "setup_seconds": seen.get("setup_seconds"),
      **(vae_record(rows, scores) if family == "vae" else family_record(family, rows, scores)),
      "test_images": len(images),
      "test_u8_sum": int(images.sum(dtype=np.int64)),
      "peak_rss_train_mb": peak_rss_train_mb,
      "tensorflow_imported": "tensorflow" in sys.modules,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "process_seconds": common.since_start()})


if __name__ == "__main__":
  main()
