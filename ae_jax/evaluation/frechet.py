"""Sample quality the same way for every generative family: the Fréchet distance between
the run's images and the test images in the feature space of the project's Fashion-MNIST
classifier (ae_jax/evaluation/classifier.py), "FD (Fashion-MNIST classifier features)",
`fd_classifier` in reports.

    python -m ae_jax.frechet --workdir runs/vae --classifier runs/classifier \\
        [--num 10000] [--seed 0] [--out report.json]

Two numbers: the distance of `num` images decoded from the run's prior
(`ae_jax.evaluation.sample.generate`: N(0, I), a learned prior, or an ex-post Gaussian
mixture) to the run's test split (its `eval_split`), and the distance of the test images'
reconstructions (from their deterministic codes) to the same test images: how far the
decoder's images are from the data at all, the part of the first that is not the prior's.

FD = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) of the two feature sets' means
and covariances, in float64 (the formula of FID, Heusel et al. 2017). It is NOT an FID:
the features are those of a small classifier trained here, not Inception-v3's, so the
numbers compare runs scored with the same classifier folder and nothing else. Like FID it
is biased by the sample size: compare numbers of the same --num. The classifier's JSON
holds its floor, the distance of 10,000 train images to the test images.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Sequence

import numpy as np

from ae_jax.core import cli, files
from ae_jax.core.errors import UserError, run_cli

METRIC = "FD (Fashion-MNIST classifier features)"


def gaussian_fit(features_NxF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean [F], covariance [F, F]) in float64 (the covariance with N - 1, as numpy's)."""
  x = np.asarray(features_NxF, np.float64)
  if len(x) < 2:
    raise UserError(f"the Fréchet distance needs at least 2 images per set, not {len(x)}: "
                    "raise --num")
  return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(a_NxF: np.ndarray, b_MxF: np.ndarray, eps: float = 1e-6) -> float:
  """The Fréchet distance between Gaussians fitted to two feature sets.

  The trace of the square root of S_1 S_2 by scipy's `sqrtm`, its real part: round-off
  gives it tiny imaginary parts. Where sqrtm finds the product singular (fewer images
  than features, or dead features) or its root is not finite, eps is added to both
  diagonals first, as pytorch-fid does, instead of printing scipy's warning."""
  mu1, s1 = gaussian_fit(a_NxF)
  mu2, s2 = gaussian_fit(b_MxF)
  root, singular = _sqrtm(s1 @ s2)
  if singular or not np.isfinite(root).all():
    offset = np.eye(len(s1)) * eps
    root, _ = _sqrtm((s1 + offset) @ (s2 + offset))
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


def _sqrtm(matrix: np.ndarray) -> tuple[np.ndarray, bool]:
  """(scipy's principal square root of `matrix`, whether scipy warned it was singular)."""
  from scipy import linalg  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", linalg.LinAlgWarning)
    root = linalg.sqrtm(matrix)
  return root, any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)


def _test_images(workdir: str, cfg: dict, data_dir: str | None, idx_dir: str | None,
                 max_test: int | None) -> np.ndarray:
  """uint8 [N, 28, 28, 1]: the run's eval split."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  from ae_jax.training import runs  # pylint: disable=import-outside-toplevel
  builder = runs.run_dataset(cfg, data_dir, idx_dir)
  images = data.load_images(builder, cfg["eval_split"], max_test)
  return runs.run_images(images, tuple(cfg["image_shape"]),
                         f"{workdir}'s {cfg['eval_split']} split")


def _reconstructions(workdir: str, step: int, images_u8: np.ndarray) -> np.ndarray:
  """The run's reconstructions in [0, 1] of images, from their deterministic codes."""
  import jax  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  model, variables = checkpoint.restore_autoencoder(workdir, step)
  run = jax.jit(lambda v, x: model.apply(v, x.astype(np.float32) / 255.0,
                                         method="reconstruct"))
  return np.concatenate([np.asarray(run(variables, images_u8[i:i + 1000]))
                         for i in range(0, len(images_u8), 1000)])


def measure(workdir: str, classifier_dir: str, num: int = 10_000, seed: int = 0,
            ex_post: bool = False, data_dir: str | None = None, idx_dir: str | None = None,
            max_test: int | None = None) -> dict:
  """The report: the two distances, what they measured and with which classifier."""
  from ae_jax.evaluation import classifier, sample  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint, runs  # pylint: disable=import-outside-toplevel
  params, info = classifier.load(classifier_dir)
  cfg = checkpoint.read_run_config(workdir)
  kind = sample.prior_kind({**cfg, "_workdir": workdir}, ex_post)  # refuses first, cheaply
  if tuple(cfg["image_shape"]) != classifier.IMAGE_SHAPE:
    raise UserError(f"{workdir} makes {tuple(cfg['image_shape'])} images; the classifier "
                    "takes Fashion-MNIST's 28x28x1: score a run of such images")
  run = runs.run_identity(workdir)
  test = _test_images(workdir, cfg, data_dir, idx_dir, max_test)
  test_features = classifier.features(params, test)
  samples = sample.generate(workdir, num=num, seed=seed, ex_post=ex_post)
  restored = _reconstructions(workdir, run["step"], test)
  return {
      "metric": "fd_classifier", "name": METRIC,
      "fd_classifier_samples": frechet_distance(classifier.features(params, samples),
                                                test_features),
      "fd_classifier_reconstructions": frechet_distance(
          classifier.features(params, restored), test_features),
      "num_samples": num, "seed": seed, "prior": kind,
      "test_images": len(test), "dataset": cfg["dataset"], "split": cfg["eval_split"],
      "run": runs.run_summary(workdir, run["step"]), "checkpoint_id": run["checkpoint_id"],
      "classifier": {"folder": os.path.abspath(classifier_dir),
                     "test_accuracy": info.get("test_accuracy"),
                     "fd_classifier_train_vs_test": info.get("fd_classifier_train_vs_test")}}


def lines(report: dict) -> str:
  c = report["classifier"]
  return "\n".join([
      f"{METRIC}, {report['num_samples']} prior samples vs {report['test_images']} "
      f"{report['dataset']} {report['split']} images: {report['fd_classifier_samples']:.3f}",
      f"{METRIC}, the {report['split']} images' reconstructions vs themselves: "
      f"{report['fd_classifier_reconstructions']:.3f}",
      f"classifier {c['folder']}: test accuracy {c['test_accuracy']:.4f}, "
      f"floor (train vs test images) {c['fd_classifier_train_vs_test']:.3f}"])


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.frechet",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained generative run")
  parser.add_argument("--classifier", required=True,
                      help="folder written by python -m ae_jax.classifier")
  parser.add_argument("--num", type=cli.positive_int, default=10_000,
                      help="prior samples to score (default 10000)")
  parser.add_argument("--seed", type=int, default=0, help="of the prior draws (default 0)")
  parser.add_argument("--ex_post", action="store_true",
                      help="draw from a Gaussian mixture fitted to the training codes (an "
                      "RAE's default)")
  parser.add_argument("--max_test", type=cli.positive_int,
                      help="the first N test images (default all)")
  parser.add_argument("--out", help="JSON report to write")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> str:
    if args.out:
      files.check_output_path(args.out, args.overwrite, "--out")
    report = measure(args.workdir, args.classifier, args.num, args.seed, args.ex_post,
                     args.data_dir, args.idx_dir, args.max_test)
    if args.out:
      files.atomic_write(args.out, (json.dumps(report, indent=2) + "\n").encode(), "--out")
      return lines(report) + f"\nwrote {args.out}"
    return lines(report)
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
