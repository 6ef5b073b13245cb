"""Quality against size: trained runs' codes at each quantization next to the classic
codecs (JPEG, WebP, AVIF, PNG) and other codecs' results, with BD-rates.

    python -m ae_jax.rate_distortion --workdir runs/dense --out runs/rd
    python -m ae_jax.rate_distortion --workdir runs/sweep/runs/K8 --workdir runs/sweep/runs/K64 \
        --extra compressai.jsonl --out runs/rd          # several runs, another codec's rows
    python -m ae_jax.rate_distortion --dataset fashion_mnist --split test --out runs/classic
    python -m ae_jax.rate_distortion --workdir runs/photo/0.0067 --whole --out runs/photo_rd
                                                        # photographs, each at its own size

For every method, bytes per image and the mean MSE, PSNR, SSIM and BCE of what a user gets
back (uint8 pixels) against the originals (by default the runs' eval split; without a run,
--dataset/--split). Writes rd.md, rd.csv, rd.json and rd.png (PSNR and SSIM against
bytes/image, a curve per method), and rd_bd.md / rd_bd.json (the BD-rate of every curve
against every classic codec's, over the PSNR range both cover and over --bd_range) into --out.

--whole measures images of several sizes (photographs) each at its own size, each its own
file, as one would store them: runs that take any size (hyperprior codecs) and the
classic codecs, image by image; a row's bytes per image and qualities are the means over
the images, and `bits_per_pixel` is their bits over their pixels (H x W), the field's rate
for photographs. Without it, a run's eval images are cut to the size it trained on.

What the bytes count (the `count` column): for the autoencoder, one image's code (the
decoder's weights and the quantization parameters are shared by every image, like a codec's
tables): payload. For the classic codecs see classic_codecs.py: PNG the whole file; JPEG the
whole file ("JPEG file"), the file without its tables ("JPEG, tables shared": Pillow's
abbreviated `streamtype=2` stream, still ~45 B of per-image markers) and the entropy-coded
scan data alone ("JPEG, scan only": payload, the like-for-like match for the autoencoder's
count); WebP and AVIF the whole file and the coded data in it (the `VP8 ` chunk, the `mdat`
box: payload). --extra rows say theirs (payload unless `"count": "file"` or "tables
shared"); an earlier report's rd.json is such a file: `--codecs none --extra
runs/classic_rd/rd.json` reuses the classic codecs measured once, as if measured again.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import re
import sys
import textwrap
from typing import Callable, Sequence

import numpy as np

from ae_jax.compression import classic_codecs, compress, rd_compare
from ae_jax.core import cli, files, progress, quality
from ae_jax.core.errors import Report, UserError, run_cli
from ae_jax.training import runs

COLUMNS = ("method", "setting", "bytes_per_image", "ratio", "mse", "psnr", "ssim", "bce")


# --------------------------------------------------------------------------- codecs

# The classic codecs live in classic_codecs.py; their names stay here for the other tools.
JPEG_QUALITIES = classic_codecs.JPEG_QUALITIES
jpeg, jpeg_rows, jpeg_segments = (classic_codecs.jpeg, classic_codecs.jpeg_rows,
                                  classic_codecs.jpeg_segments)
png_row, webp_rows, avif_rows = (classic_codecs.png_row, classic_codecs.webp_rows,
                                 classic_codecs.avif_rows)
_row = classic_codecs.measured_row


def code_label(codes: compress.Codes) -> str:
  """'dense K=64' for a flat code, or 'conv 4x4x8' (the code's shape)."""
  if len(codes.code_shape) == 1:
    return f"{codes.model} K={codes.code_shape[0]}"
  return f"{codes.model} {'x'.join(map(str, codes.code_shape))}"


def autoencoder_rows(workdir: str, images_u8: np.ndarray,
                     quants: Sequence[str] = compress.QUANTS, label: str | None = None,
                     step: int | None = None) -> list[dict]:
  """One row per quantization of the codes of checkpoint `step` (default: the latest;
  the float encoder runs once). A VQ-VAE run's row is its index codes (`quants` aside):
  bytes per image = the packed indices; a learned codec's is `codec_row`."""
  raw = int(np.prod(images_u8.shape[1:]))
  own = compress.run_quants(runs.read_run_config(workdir))[0]
  if own == compress.ENTROPY:
    return [codec_row(workdir, images_u8, label, step)]
  # A VQ-VAE's codes are codebook rows: encoded once, as indices. Others: the float codes
  # once, then quantized each way.
  codes32 = None if own == compress.INDEX else compress.encode(workdir, images_u8, "float32",
                                                               step=step)
  rows = []
  for quant in ((own,) if codes32 is None else quants):
    if codes32 is None:
      codes = compress.encode(workdir, images_u8, quant, step=step)
    else:
      values, offset, scale = compress.quantize(codes32.values, quant)
      codes = dataclasses.replace(codes32, values=values, quant=quant, offset=offset,
                                  scale=scale)
    label = label or code_label(codes)
    restored = quality.to_uint8(compress.decode(codes, workdir))
    file_bytes = len(compress.codes_to_bytes(codes)) / len(images_u8)
    rows.append(_row(f"autoencoder {quant}", label, codes.bytes_per_image, raw, restored,
                     images_u8, file_bytes_per_image=file_bytes, quant=quant,
                     latent_dim=codes.latent_dim, model=codes.model, workdir=workdir,
                     count="payload"))
  return rows


def codec_row(workdir: str, images_u8: np.ndarray, label: str | None = None,
              step: int | None = None) -> dict:
  """The row of a learned codec's run: its entropy-coded bytes per image (stream and
  length prefix), next to the model's own estimate of them, and encode/decode speed (the
  file written and read back; restoring the checkpoints and compiling not counted)."""
  import time  # pylint: disable=import-outside-toplevel
  raw = int(np.prod(images_u8.shape[1:]))
  warm = compress.encode(workdir, images_u8[:10], compress.ENTROPY, step=step)
  compress.decode(warm, workdir)  # restores and compiles: not counted in the speeds below
  t0 = time.perf_counter()
  codes = compress.encode(workdir, images_u8, compress.ENTROPY, step=step)
  data = compress.codes_to_bytes(codes)
  t1 = time.perf_counter()
  restored = quality.to_uint8(compress.decode(compress.codes_from_bytes(data), workdir))
  t2 = time.perf_counter()
  cfg = runs.read_run_config(workdir)
  weight = cfg.get("loss_weights", {}).get("rate")
  pixels = int(np.prod(cfg["image_shape"][:2]))  # what the rate weight counts (configs/codec.py)
  lmbda = 1.0 / (weight * 255.0**2 * pixels) if weight else None
  label = label or (f"{codes.model} λ={lmbda:.4g}" if lmbda else code_label(codes))
  # One curve per architecture and training length (the runs of one λ sweep share both).
  method = f"learned codec ({codes.latent_dim} values, {cfg.get('num_epochs')} epochs)"
  if isinstance(codes, compress.HyperCodes):
    kind = "mean-scale" if codes.mean_scale else "scale"
    method = f"hyperprior codec ({kind}, {codes.latent_dim} values, {cfg.get('num_epochs')} epochs)"
  return _row(method, label, codes.bytes_per_image, raw, restored, images_u8,
              file_bytes_per_image=len(data) / len(images_u8), quant=compress.ENTROPY,
              latent_dim=codes.latent_dim, lmbda=lmbda, model=codes.model, workdir=workdir,
              count="payload",
              estimated_bytes_per_image=float(np.mean(codes.estimated_bits)) / 8,
              clipped=codes.clipped, encode_images_per_sec=len(images_u8) / (t1 - t0),
              decode_images_per_sec=len(images_u8) / (t2 - t1))


# --------------------------------------------------------------------------- outputs

def _fmt(value) -> str:
  if isinstance(value, float):
    if math.isinf(value):
      return "inf"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
  return str(value)


def write_table(out: str, name: str, rows: list[dict], columns: Sequence[str],
                source: str | None = None) -> None:
  """name.md (markdown, headed by `source`: what was measured), name.csv and name.json (all
  fields; inf PSNR as null) in `out`."""
  with open(os.path.join(out, f"{name}.md"), "w") as f:
    if source:
      f.write(f"{source}\n\n")
    f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
    for r in rows:
      f.write("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |\n")
  with open(os.path.join(out, f"{name}.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in r.items()} for r in rows]
  with open(os.path.join(out, f"{name}.json"), "w") as f:
    json.dump(clean, f, indent=1)


# How a curve is drawn: a colour per codec (per curve for the autoencoder and --extra
# methods), and the way its bytes were counted by line and marker, so that payload curves
# are compared with payload curves and files with files.
_COUNT_STYLE = {"payload": ("-", "o"), "file": ("--", "s"), "tables shared": (":", "^")}
_CODECS = ("JPEG", "WebP", "AVIF")


def _family(method: str) -> str:
  first = method.split(" ")[0].rstrip(",")
  return first if first in _CODECS else method


def _point_label(setting: str) -> str:
  """What a point of a curve is called beside it: the first `name=value` of its setting
  ('dense K=8' -> 'K=8', 'λ=0.0009, N=32, M=48' -> 'λ=0.0009'), else the setting, short."""
  first = re.search(r"[^\s,=]+=[^\s,]+", setting)
  return first.group(0) if first else textwrap.shorten(setting, 20, placeholder="…")


def plot(path: str, rows: list[dict], title: str, raw_bytes: int) -> None:
  """PSNR and SSIM against bytes/image (log scale), one curve per method; `raw_bytes`: an
  uncompressed image's size, for the axis label. Readable with many runs on it: see
  `rd_figure`."""
  fig = rd_figure(rows, title, raw_bytes)
  fig.savefig(path)


def rd_figure(rows: list[dict], title: str, raw_bytes: int):
  """`plot`'s figure: the title shortened to two lines (name the runs in the report), the
  legend below both plots in up to three columns at a readable size (the figure grows with
  it), and each labelled curve (runs or settings of one method) labelled at its two ends,
  a label moved, or dropped, where it would overlap another."""
  from ae_jax.core import plots  # pylint: disable=import-outside-toplevel
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel
  sizes = [r["bytes_per_image"] for r in rows]
  ticks = [2**i for i in range(0, 14) if min(sizes) / 2 <= 2**i <= max(sizes) * 2]
  methods = list(dict.fromkeys(r["method"] for r in rows))
  lossless = {m for m in methods if all(r["psnr"] is None for r in rows if r["method"] == m)}
  families = list(dict.fromkeys(_family(m) for m in methods if m not in lossless))
  colour = dict(zip(families, plots.colours(len(families))))
  columns, legend_rows = plots.legend_layout(len(methods))
  fig = plots.figure(figsize=(13, 4.6 + 0.25 * (legend_rows + 1)), dpi=100,
                     layout="constrained")
  axes = fig.subplots(1, 2)
  labels = []
  for ax, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
    for method in methods:
      mine = [r for r in rows if r["method"] == method]
      pts = sorted((r["bytes_per_image"], r[metric], r["setting"]) for r in mine)
      if method in lossless:  # PNG's: a vertical line at its size, not a point at infinity
        ax.axvline(pts[0][0], color="gray", ls=":",
                   label=f"{method} lossless ({pts[0][0]:.0f} B)")
        continue
      line, marker = _COUNT_STYLE.get(mine[0].get("count", "payload"), ("-", "o"))
      ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=line, marker=marker, ms=4,
              color=colour[_family(method)], label=method)
      if _family(method) == method and len({p[2] for p in pts}) > 1:
        # Runs or settings of one curve: its two ends say which is which; the left one
        # above left of its point, the right one below right (curves rise to the right).
        labels += [plots.point_label(ax, _point_label(s), (x, y), colour[_family(method)],
                                     first_place=place)
                   for (x, y, s), place in ((pts[0], 0), (pts[-1], 1))]
    ax.set_xscale("log")
    ax.set_xticks(ticks)  # plain numbers: log-scale's default labels overlap here
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.tick_params(labelsize=9)
    ax.set_xlabel(f"bytes per image (raw: {raw_bytes})", fontsize=10)
    ax.set_ylabel(label, fontsize=10)
    ax.grid(alpha=0.3, which="both")
  handles, names = axes[0].get_legend_handles_labels()
  fig.legend(handles, names, loc="outside lower center", ncols=columns, fontsize=9,
             title="solid: payload, dashed: file, dotted: tables shared", title_fontsize=9,
             frameon=False)
  fig.suptitle(plots.short_title(title), fontsize=plots.TITLE_FONT)
  plots.place_labels(fig, labels)
  return fig


# ------------------------------------------------------------------------------ CLI

def eval_source(workdir: str, split: str | None = None, data_dir: str | None = None,
                idx_dir: str | None = None):
  """(tfds builder, split, run config) of the run's dataset (its eval split unless told;
  where its config.json says, unless `data_dir` / `idx_dir`); an unknown or empty split is
  refused here, in seconds."""
  from ae_jax.training import checkpoint  # pylint: disable=import-outside-toplevel
  from ae_jax.data import pipeline as data
  cfg = checkpoint.read_run_config(workdir)
  builder = runs.run_dataset(cfg, data_dir, idx_dir)
  split = split or cfg["eval_split"]
  data.num_examples(builder, split, flag="--split")
  return builder, split, cfg


def load_eval_images(workdir: str, split: str | None = None, max_images: int | None = None,
                     data_dir: str | None = None,
                     idx_dir: str | None = None) -> tuple[np.ndarray, dict]:
  """The uint8 images of the run's dataset (its eval split unless told) as the run takes
  them (`runs.run_images`: centre crops of the run's size from larger ones), and the
  config."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  builder, split, cfg = eval_source(workdir, split, data_dir, idx_dir)
  return runs.run_images(data.load_images(builder, split, max_images),
                         tuple(cfg["image_shape"]), f"{cfg['dataset']} {split}"), cfg


@dataclasses.dataclass(frozen=True)
class Classic:
  """Which classic codecs to measure, and their settings (the flags of the same names)."""
  codecs: Sequence[str] = classic_codecs.NAMES
  jpeg_qualities: Sequence[int] = classic_codecs.JPEG_QUALITIES
  webp_qualities: Sequence[int] = classic_codecs.WEBP_QUALITIES
  avif_qualities: Sequence[int] = classic_codecs.AVIF_QUALITIES
  avif_speed: int = classic_codecs.AVIF_SPEED

  def jobs(self, images_u8: np.ndarray) -> list[tuple[str, Callable[[], list[dict]]]]:
    """(name, work) of each codec and quality: PNG, JPEG, WebP, AVIF, those selected."""
    jobs = []
    if "png" in self.codecs:
      jobs.append(("PNG", lambda: [png_row(images_u8)]))
    for name, rows, qualities, options in (
        ("jpeg", jpeg_rows, self.jpeg_qualities, {}),
        ("webp", webp_rows, self.webp_qualities, {}),
        ("avif", avif_rows, self.avif_qualities, {"speed": self.avif_speed})):
      if name in self.codecs:
        jobs += [(f"{name.upper()} quality {q}",
                  functools.partial(rows, images_u8, [q], **options)) for q in qualities]
    return jobs

  def methods(self) -> set[str]:
    """The names of the curves it measures."""
    names = {"png": ["PNG"], "jpeg": ["JPEG file", "JPEG, tables shared", "JPEG, scan only"],
             "webp": ["WebP file", "WebP, VP8 payload"],
             "avif": ["AVIF file", "AVIF, mdat payload"]}
    return {m for c in self.codecs for m in names[c]}


def measure(images_u8: np.ndarray, autoencoders: Callable[[], list[dict]],
            jpeg_qualities: Sequence[int] = JPEG_QUALITIES,
            classic: Classic | None = None) -> list[dict]:
  """The rows of `autoencoders()`, then PNG, JPEG, WebP and AVIF at each quality (`classic`,
  by default all with JPEG at `jpeg_qualities`), with one progress line (on a terminal) for
  them all."""
  classic = classic or Classic(jpeg_qualities=tuple(jpeg_qualities))
  jobs = [("autoencoder", autoencoders)] + classic.jobs(images_u8)
  rows = []
  with progress.bar(len(jobs), "measuring", "codec") as line:
    for name, job in jobs:
      line.set_postfix_str(name)
      rows += job()
      line.update()
  return rows


OUTPUTS = ("rd.md", "rd.csv", "rd.json", "rd_bd.md", "rd_bd.json", "rd.png")
BD_RANGE = (21.0, 25.0)  # issue #23's range for the BD-rate against JPEG


def _sources(workdirs: Sequence[str], dataset: str | None, split: str | None,
             data_dir: str | None, idx_dir: str | None, whole: bool = False):
  """(tfds builder, split, dataset name, image shape or None) of the runs (one dataset and
  split for all; the first run's image shape) or of --dataset; refused in seconds when
  they differ or the split is unknown or empty. `whole`: images of any sizes are taken."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  if not workdirs:
    builder = data.get_builder(dataset, data_dir, idx_dir or data.DEFAULT_IDX_DIR,
                               options="--")
    split = split or "test"
    data.num_examples(builder, split, flag="--split")
    if None in data.image_shape(builder)[:2] and not whole:
      raise UserError(f"{dataset} holds images of several sizes: add --whole to measure "
                      "each at its own size, or give a run, whose size they are measured "
                      "at (centre crops)")
    return builder, split, dataset, None
  seen, shapes = {}, []
  for workdir in workdirs:
    builder, run_split, cfg = eval_source(workdir, split, data_dir, idx_dir)
    seen.setdefault((cfg["dataset"], run_split), (workdir, builder))
    shapes.append(tuple(cfg["image_shape"]))
  if len(seen) > 1:
    (a, (wa, _)), (b, (wb, _)) = list(seen.items())[:2]
    raise UserError(f"--workdir {wa} measures {a[0]} {a[1]} but --workdir {wb} {b[0]} {b[1]}: "
                    "give runs of one dataset (--split chooses one split for all)")
  (name, split), (_, builder) = next(iter(seen.items()))
  return builder, split, name, shapes[0]


def _autoencoder_rows(workdirs: Sequence[str], steps: Sequence[int],
                      images: np.ndarray) -> list[dict]:
  """Every run's rows; a curve per quantization across the runs (a K sweep, a λ sweep), or
  per quantization and model when the runs are of different models."""
  rows = [autoencoder_rows(w, images, step=s) for w, s in zip(workdirs, steps)]
  labels = [r[0]["setting"] for r in rows if r]
  models = {r[0]["model"] for r in rows if r}
  for run_rows, workdir in zip(rows, workdirs):
    for row in run_rows:
      if labels.count(row["setting"]) > 1:  # two runs of one code size: name them
        row["setting"] += f" ({os.path.basename(os.path.normpath(workdir))})"
      if len(models) > 1:
        row["method"] += f", {row['model']}"
  return [row for run_rows in rows for row in run_rows]


def whole_rows(images: Sequence[np.ndarray],
               rows_of: Callable[[np.ndarray], list[dict]]) -> list[dict]:
  """Rows over images of several sizes, each measured at its own size (`rows_of` a batch of
  one image): per method and setting, every number the mean over the images, then
  `bits_per_pixel` (their bytes in bits over their H x W pixels) and `ratio` (their raw
  bytes over their bytes) of them all."""
  groups: dict[tuple[str, str], list[dict]] = {}
  for image in images:
    for row in rows_of(image[None]):
      # A codec's code grows with the image: its size leaves the curve's name.
      row["method"] = re.sub(r"\d+ values, ", "", row["method"])
      groups.setdefault((row["method"], row["setting"]), []).append(row)
  pixels = sum(im.shape[0] * im.shape[1] for im in images)
  raw = sum(im.size for im in images)
  out = []
  for rows in groups.values():
    if len(rows) != len(images):  # every method measures every image
      raise ValueError(f"{rows[0]['method']} {rows[0]['setting']}: {len(rows)} rows for "
                       f"{len(images)} images")
    row = dict(rows[0])
    for key, value in rows[0].items():
      if isinstance(value, float) or key == "clipped":
        row[key] = float(np.mean([r[key] for r in rows]))
    total = row["bytes_per_image"] * len(images)
    row.update(bits_per_pixel=8 * total / pixels, ratio=raw / total, images=len(images))
    out.append(row)
  return out


def _check_whole(workdirs: Sequence[str]) -> None:
  """--whole measures runs at any size: those that take one (hyperprior codecs) only."""
  for workdir in workdirs:
    cfg = runs.read_run_config(workdir)
    if not runs.is_hyperprior(cfg):
      h, w, _ = cfg["image_shape"]
      raise UserError(f"--whole measures every image at its own size, and {workdir} is a "
                      f"{compress.model_label(cfg)} model of {w}x{h} images: give runs that "
                      "take any size (hyperprior codecs, configs/hyperprior_photo.py), or "
                      "drop --whole (its images are cut to its size)")


def run(workdir: str | Sequence[str] | None, out: str, *, split: str | None = None,
        max_images: int | None = None, jpeg_qualities: Sequence[int] = JPEG_QUALITIES,
        classic: Classic | None = None, dataset: str | None = None,
        extra: Sequence[str] = (), bd_range: tuple[float, float] = BD_RANGE,
        bd_method: str = "pchip", overwrite: bool = False, data_dir: str | None = None,
        idx_dir: str | None = None, whole: bool = False) -> list[dict]:
  """Measures the runs in `workdir` (one or several; none: the classic codecs alone on
  `dataset`'s `split`) and the classic codecs on their eval images, adds the rows of the
  `extra` files, and writes the table, the plot and the BD-rates (refused before any work
  if they exist in `out`, unless `overwrite`). `whole`: each image at its own size, each
  its own file (`whole_rows`), for runs that take any size."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  workdirs = [workdir] if isinstance(workdir, str) else list(workdir or ())
  classic = classic or Classic(jpeg_qualities=tuple(jpeg_qualities))
  if not workdirs and not dataset:
    raise UserError("nothing to measure on: give --workdir RUN (repeatable) for trained runs, "
                    "or --dataset NAME for the classic codecs alone")
  if workdirs and dataset:
    raise UserError("--dataset is for the classic codecs alone: runs are measured on their "
                    "own dataset (--split chooses the split); drop --dataset")
  twice = [w for w in workdirs if workdirs.count(w) > 1]
  if twice:
    raise UserError(f"--workdir {twice[0]} is given twice: give each run once")
  # Runs without a checkpoint fail here, before any work. Steps are pinned: a run still
  # training in a workdir must not change which checkpoint the report names.
  steps = [runs.run_identity(w)["step"] for w in workdirs]
  if whole:
    _check_whole(workdirs)
  extra_rows = [row for path in extra for row in rd_compare.read_extra(path)]
  rd_compare.refuse_clashes(extra_rows, classic.methods(), runs=bool(workdirs))
  if not workdirs and not classic.codecs and not extra_rows:
    raise UserError("nothing to measure: --codecs none without --workdir or --extra")
  # So does a bad split or missing data; --out is made only when the report is written.
  builder, split, name, shape = _sources(workdirs, dataset, split, data_dir, idx_dir, whole)
  files.check_output_folder(out, OUTPUTS, overwrite)
  images = data.load_images(builder, split, max_images)
  if whole:
    images = list(images)
    rows = whole_rows(images, lambda one: measure(
        one, lambda: _autoencoder_rows(workdirs, steps, one), classic=classic))
    raw = round(float(np.mean([im.size for im in images])))
  else:
    if shape is not None:  # the runs' size (centre crops of larger images)
      images = runs.run_images(images, shape, f"{name} {split}")
    rows = measure(images, lambda: _autoencoder_rows(workdirs, steps, images), classic=classic)
    raw = int(images[0].size)
  rows += [{**r, "ratio": raw / r["bytes_per_image"]} for r in extra_rows]
  measured = "; ".join(runs.run_summary(w, s) for w, s in zip(workdirs, steps))
  sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images}) if whole else []
  source = (f"{len(images)} {name} {split} images; "
            + (f"each whole ({', '.join(sizes)}), each its own file; " if whole else "")
            + (f"autoencoder{'s' if len(workdirs) > 1 else ''}: {measured}" if workdirs
               else "classic codecs only")
            + "".join(f"; extra rows: {p}" for p in extra))
  # The six files appear together (or, after a failure or a stop, none of them).
  with files.output_set(out, OUTPUTS, overwrite) as staging:
    write_table(staging, "rd", rows, COLUMNS + ("count", "file_bytes_per_image")
                + (("bits_per_pixel",) if whole else ()), source=source)
    anchors = tuple(dict.fromkeys(  # a peer's too
        rd_compare.ANCHORS + tuple(r["method"] for r in extra_rows if r["psnr"] is not None)))
    rd_compare.write_bd(staging, rd_compare.bd_rows(rows, method=bd_method, anchors=anchors),
                        rd_compare.bd_rows(rows, bd_range, bd_method, anchors), bd_range,
                        bd_method, source)
    runs_note = (f", {len(workdirs)} runs (named in rd.md)" if len(workdirs) > 1
                 else f", {workdirs[0]}" if workdirs else "")
    plot(os.path.join(staging, "rd.png"), rows, f"{name} {split}, {len(images)} images{runs_note}",
         raw)
  return rows


def parse_ints(text: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise UserError(f"{text!r} is not a comma-separated list of integers, e.g. 1,5,10") from None
  if not values:
    raise UserError("give at least one value, e.g. 1,5,10")
  return values


def parse_qualities(text: str, flag: str = "--jpeg_qualities", lo: int = 1, hi: int = 95,
                    why: str = "Pillow's useful range") -> list[int]:
  """A qualities flag: comma-separated integers in lo..hi (JPEG: 1..95, Pillow's useful
  range)."""
  qualities = parse_ints(text)
  if not all(lo <= q <= hi for q in qualities):
    raise UserError(f"{flag} must lie in {lo}..{hi} ({why})")
  return qualities


def parse_codecs(text: str) -> tuple[str, ...]:
  """--codecs: comma-separated names of classic codecs, or `none`."""
  if text.strip() == "none":
    return ()
  names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
  unknown = [n for n in names if n not in classic_codecs.NAMES]
  if unknown or not names:
    raise UserError(f"--codecs {text!r}: give a comma-separated list of "
                    f"{', '.join(classic_codecs.NAMES)}, or none")
  return tuple(dict.fromkeys(names))


def parse_range(text: str) -> tuple[float, float]:
  """--bd_range: 'LOW,HIGH' in dB, LOW < HIGH."""
  try:
    lo, hi = (float(v) for v in text.split(","))
  except ValueError:
    lo = hi = math.nan
  if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
    raise UserError(f"--bd_range {text!r}: give two PSNRs in dB, low first, e.g. 21,25")
  return lo, hi


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.rate_distortion",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", default=[],
                      help="a trained run (repeat for several: one curve per quantization)")
  parser.add_argument("--dataset", help="without --workdir: measure the classic codecs alone "
                      "on this tfds dataset, e.g. fashion_mnist")
  parser.add_argument("--out", required=True, help="folder for rd.md/.csv/.json/.png, rd_bd.*")
  parser.add_argument("--split", help="split to measure on (default: the runs' eval split; "
                      "with --dataset: test)")
  parser.add_argument("--max_images", type=cli.positive_int,
                      help="only the first N images")
  parser.add_argument("--codecs", default=",".join(classic_codecs.NAMES),
                      help="classic codecs to measure (or none)")
  parser.add_argument("--jpeg_qualities", default=",".join(map(str, JPEG_QUALITIES)))
  parser.add_argument("--webp_qualities",
                      default=",".join(map(str, classic_codecs.WEBP_QUALITIES)))
  parser.add_argument("--avif_qualities",
                      default=",".join(map(str, classic_codecs.AVIF_QUALITIES)))
  parser.add_argument("--avif_speed", default=str(classic_codecs.AVIF_SPEED),
                      help="libavif's speed, 0 (slowest, smallest) .. 10")
  parser.add_argument("--extra", action="append", default=[],
                      help="a JSON/JSONL file of another codec's rows (method, setting, "
                      "bytes_per_image, psnr, ssim; count: payload|file); repeatable")
  parser.add_argument("--bd_range", default=",".join(f"{v:g}" for v in BD_RANGE),
                      help="PSNR range (dB) of the second BD-rate table")
  parser.add_argument("--bd_method", choices=("pchip", "cubic"), default="pchip",
                      help="BD-rate interpolation (see ae_jax/compression/bd_rate.py)")
  parser.add_argument("--overwrite", action="store_true", help="replace rd.* in --out")
  parser.add_argument("--whole", action="store_true",
                      help="every image at its own size, each its own file (photographs; "
                      "runs that take any size): adds bits per pixel")
  cli.add_run_data_flags(parser)
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> Report:
    speed = parse_ints(args.avif_speed)
    if len(speed) != 1 or not 0 <= speed[0] <= 10:
      raise UserError(f"--avif_speed {args.avif_speed!r}: give one integer in 0..10 "
                      "(libavif's speeds)")
    classic = Classic(
        codecs=parse_codecs(args.codecs),
        jpeg_qualities=parse_qualities(args.jpeg_qualities),
        webp_qualities=parse_qualities(args.webp_qualities, "--webp_qualities", 0, 100,
                                       "libwebp's range"),
        avif_qualities=parse_qualities(args.avif_qualities, "--avif_qualities", 0, 100,
                                       "libavif's range"),
        avif_speed=speed[0])
    rows = run(args.workdir, args.out, split=args.split, max_images=args.max_images,
               classic=classic, dataset=args.dataset, extra=args.extra,
               bd_range=parse_range(args.bd_range), bd_method=args.bd_method,
               overwrite=args.overwrite, data_dir=args.data_dir, idx_dir=args.idx_dir,
               whole=args.whole)
    return Report(os.path.join(args.out, "rd.md"),
                  f"wrote {len(rows)} rows, rd.png and rd_bd.md to {args.out}")
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
