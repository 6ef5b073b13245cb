"""Looking at the latent space: a 2-D map of the test codes, and decoded mixtures of two codes.

    python -m ae_jax.latent --workdir runs/dense --out runs/latent

Writes into --out: latent_pca.png (the first two principal components of the codes of the
run's eval images, coloured by label; for K=2 these are the codes themselves, rotated)
and interpolation.png (two test images, decoded from (1-t) z_a + t z_b, above the same
blend done on pixels for contrast).
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Sequence

import numpy as np

from ae_jax.core import cli, files, quality
from ae_jax.compression import compress
from ae_jax.core.errors import UserError, run_cli
from ae_jax.training import runs


def load_labelled(workdir: str, max_images: int | None, data_dir: str | None = None,
                  idx_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
  """(uint8 images, labels, class names) of the run's eval split."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data
  cfg = checkpoint.read_run_config(workdir)
  builder = runs.run_dataset(cfg, data_dir, idx_dir)
  n = data.num_examples(builder, cfg["eval_split"])
  if "label" not in builder.info.features:
    raise UserError(f"{cfg['dataset']} has no labels to colour the codes by (a folder's "
                    "come from class subfolders)")
  split = cfg["eval_split"] + (f"[:{max_images}]" if max_images and max_images < n else "")
  labels = builder.as_dataset(split=split, shuffle_files=False,  # images: load_images'
                              decoders={"image": tfds.decode.SkipDecoding()})
  labels = labels.map(lambda ex: ex["label"])
  labels = tfds.as_numpy(labels.batch(max(n, 1)).get_single_element())
  images = runs.run_images(data.load_images(builder, cfg["eval_split"], max_images),
                           tuple(cfg["image_shape"]), f"{cfg['dataset']} {cfg['eval_split']}")
  names = list(getattr(builder.info.features["label"], "names", []) or [])
  return images, labels, names


def pca_2d(codes_NxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(the codes projected on their first two principal axes [N, 2], explained variance ratio
  [2]). A code of one number (K=1) has no second axis: its column and ratio are 0."""
  centred = codes_NxD - codes_NxD.mean(axis=0)
  _, s, vt = np.linalg.svd(centred, full_matrices=False)
  var = s**2 / max(np.sum(s**2), 1e-12)
  xy, var = centred @ vt[:2].T, var[:2]
  pad = 2 - xy.shape[1]
  return np.pad(xy, ((0, 0), (0, pad))), np.pad(var, (0, pad))


def interpolate(codes: compress.Codes, workdir: str, a: int, b: int,
                steps: int = 9) -> np.ndarray:
  """Images [steps, H, W, C] in [0, 1] decoded from codes mixed from image a to image b."""
  z = codes.values.astype(np.float32)
  t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
  mixed = (1 - t) * z[a] + t * z[b]
  return compress.decode(dataclasses.replace(codes, values=mixed, names=None), workdir)


def save_scatter(path: str, xy: np.ndarray, labels: np.ndarray, names: Sequence[str],
                 var: np.ndarray, title: str) -> None:
  scatter_figure(xy, labels, names, var, title).savefig(path)


def scatter_figure(xy: np.ndarray, labels: np.ndarray, names: Sequence[str], var: np.ndarray,
                   title: str):
  """The codes' first two principal components, a colour per label; the legend beside the
  plot (not over the points), the title shortened to two lines."""
  from ae_jax.core import plots  # pylint: disable=import-outside-toplevel
  classes = np.unique(labels)
  palette = plots.colours(int(classes.max()) + 1)  # a label keeps its colour across runs
  fig = plots.figure(figsize=(7.2, 4.8), dpi=80, layout="constrained")
  ax = fig.subplots()
  for c in classes:
    sel = labels == c
    name = names[c] if c < len(names) else str(c)
    ax.scatter(xy[sel, 0], xy[sel, 1], s=3, alpha=0.5, color=palette[int(c)], label=name)
  ax.set_xlabel(f"PC 1 ({100 * var[0]:.0f}% of variance)")
  ax.set_ylabel(f"PC 2 ({100 * var[1]:.0f}% of variance)")
  ax.set_title(plots.short_title(title, width=70), fontsize=plots.TITLE_FONT - 1)
  fig.legend(fontsize=9, markerscale=4, loc="outside right upper", frameon=False)
  return fig


OUTPUTS = ("latent_pca.png", "interpolation.png")


def run(workdir: str, out: str, max_images: int = 2000,
        pair: tuple[int, int] | None = None, steps: int = 9, overwrite: bool = False,
        data_dir: str | None = None, idx_dir: str | None = None) -> dict:
  """Writes both pictures (refused before any work if they exist in `out`, unless
  `overwrite`); `pair` defaults to image 0 and the image whose code is farthest."""
  files.check_output_folder(out, OUTPUTS, overwrite)  # before any work
  runs.run_identity(workdir)
  images, labels, names = load_labelled(workdir, max_images, data_dir, idx_dir)
  if pair is not None and not (0 <= min(pair) and max(pair) < len(images)):
    raise UserError(f"--pair {pair} must index the first {len(images)} eval images")
  codes = compress.encode(workdir, images, "float32")
  if pair is None:
    pair = (0, int(np.argmax(np.linalg.norm(codes.values - codes.values[0], axis=1))))
  xy, var = pca_2d(codes.values)
  a, b = pair
  mixed = interpolate(codes, workdir, a, b, steps)  # reads the decoder before any writing
  from ae_jax.core import plots  # pylint: disable=import-outside-toplevel
  t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None, None, None]
  pixels = (1 - t) * quality.to_unit(images[a])[None] + t * quality.to_unit(images[b])[None]
  # All read: the two pictures appear together (or, after a failure or a stop, neither).
  with files.output_set(out, OUTPUTS, overwrite, what=" and ".join(OUTPUTS)) as staging:
    save_scatter(os.path.join(staging, "latent_pca.png"), xy, labels, names, var,
                 f"codes of {len(images)} eval images ({codes.model}, code "
                 f"{codes.code_shape}), first two principal components")
    plots.save_grid(os.path.join(staging, "interpolation.png"),
                    [("codes mixed", mixed), ("pixels mixed", np.asarray(pixels))])
  return {"explained_variance": var.tolist(), "num_images": len(images), "pair": pair,
          "run": runs.run_summary(workdir, codes.run["step"])}


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.latent",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained run")
  parser.add_argument("--out", required=True, help="folder for latent_pca.png and "
                      "interpolation.png")
  parser.add_argument("--max_images", type=cli.positive_int, default=2000)
  parser.add_argument("--pair", help="indices of the two images to mix (default: image 0 "
                      "and the image whose code is farthest from its code)")
  parser.add_argument("--steps", type=int, default=9)
  parser.add_argument("--overwrite", action="store_true",
                      help="replace the two pictures in --out")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> str:
    from ae_jax.compression import rate_distortion  # pylint: disable=import-outside-toplevel
    pair = rate_distortion.parse_ints(args.pair) if args.pair else None
    if (pair is not None and len(pair) != 2) or args.steps < 2:
      raise UserError("--pair takes two indices (e.g. 0,1) and --steps at least 2")
    info = run(args.workdir, args.out, args.max_images, pair and tuple(pair), args.steps,
               args.overwrite, args.data_dir, args.idx_dir)
    return (f"wrote latent_pca.png and interpolation.png (images {info['pair']}) to "
            f"{args.out} (PC1, PC2 explain "
            f"{100 * info['explained_variance'][0]:.0f}% and "
            f"{100 * info['explained_variance'][1]:.0f}% of the codes' variance); "
            f"{info['run']}")
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
