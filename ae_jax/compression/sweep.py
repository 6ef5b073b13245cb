"""The latent-size trade-off: train the dense autoencoder for each code size K, then measure.

    python -m ae_jax.sweep --out runs/sweep --epochs 5            # K = 2,4,8,...,128
    python -m ae_jax.sweep --out runs/sweep --ks 8,64 --set batch_size=256

Each K trains `configs/dense.py` (with --epochs and any --set field=value overrides) in
--out/runs/K<K> (rerunning resumes or reuses finished runs), then its codes are measured on
the eval split at each quantization next to JPEG and PNG. Writes sweep.md, sweep.csv,
sweep.json (one row per K), sweep_rd.md/.csv/.json (every K's rate-distortion rows) and
sweep.png (the rate-distortion axes of rate_distortion.py, one point per K) into --out,
rewritten on every rerun (they are made from the runs there).
"""
from __future__ import annotations

import ast
import os
import re
import sys
from typing import Sequence

import ml_collections

from ae_jax.core import cli, files, progress
from ae_jax.compression import compress, rate_distortion
from ae_jax.training import config_lib
from ae_jax.core.errors import Report, UserError, run_cli

KS = (2, 4, 8, 16, 32, 64, 128)
# Fields the sweep sets itself (an override would be ignored or mislabel the tables).
SWEPT = {"encoder.latent_dim": "give the code sizes with --ks", "num_epochs": "use --epochs",
         "encoder.name": "the sweep trains the dense model (K is its code size)",
         "decoder.name": "the sweep trains the dense model (K is its code size)"}
OUTPUTS = ("sweep.md", "sweep.csv", "sweep.json", "sweep_rd.md", "sweep_rd.csv", "sweep_rd.json",
           "sweep.png")
COLUMNS = ("K", "bytes_float32", "bytes_float16", "bytes_uint8", "ratio_float32",
           "ratio_uint8", "val_bce", "psnr_float32", "psnr_uint8", "ssim_float32", "ssim_uint8")


def make_config(k: int, epochs: int, overrides: dict | None = None) -> ml_collections.ConfigDict:
  """configs/dense.py with encoder.latent_dim=k, num_epochs=epochs and the dotted
  `overrides`."""
  from configs import dense  # pylint: disable=import-outside-toplevel
  config = dense.get_config()
  config.progress_bar = False
  for field, value in (overrides or {}).items():
    if field in SWEPT:
      raise UserError(f"--set {field}=... is the sweep's own: {SWEPT[field]}")
    node, *path, leaf = [config] + field.split(".")
    try:
      for part in path:
        node = node[part]
      if leaf not in node:
        raise KeyError(leaf)
      node[leaf] = value
    except KeyError:
      raise UserError(f"unknown config field {field!r}: see configs/default.py") from None
    except TypeError:
      if isinstance(node[leaf], ml_collections.ConfigDict):
        raise UserError(f"--set {field}=... names a group: set its fields, e.g. --set "
                        f"{field}.{sorted(node[leaf].keys())[0]}=...") from None
      raise UserError(f"bad value {field}={value!r}: it must be of type "
                      f"{node.get_type(leaf).__name__}, as in configs/default.py "
                      f"(--set {field}=...)") from None
  config.encoder.latent_dim, config.num_epochs = k, epochs
  return config


def _in_sweep_terms(message: str) -> str:
  """A message from launch.py's world, with its --config.FIELD=... flags named as the sweep
  takes them: --epochs, and --set FIELD=... for the rest."""
  message = re.sub(r"--config\.num_epochs=(\d+)", r"--epochs \1", message)
  message = re.sub(r"(?:\bset )?--config\.([\w.]*\w)(=?)",
                   lambda m: f"--set {m.group(1)}=" + ("" if m.group(2) else "..."), message)
  # The sweep names each K's folder itself; they all lie in its --out.
  return message.replace("--workdir ", "").replace("another --workdir", "another --out")


def parse_overrides(items: Sequence[str]) -> dict:
  """field=value strings (values as Python literals, else strings) as a dict."""
  out = {}
  for item in items:
    field, sep, text = item.partition("=")
    if not sep or not field:
      raise UserError(f"--set {item!r} must look like field=value, e.g. --set batch_size=256")
    try:
      out[field] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      out[field] = text
  return out


def last_metrics(workdir: str) -> dict:
  from ae_jax.training import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  return workdir_lib.MetricsLog(workdir, enabled=False).rows()[-1]


def sweep_row(k: int, workdir: str, images_u8) -> tuple[dict, list[dict]]:
  """The table row of one trained K, and its rate-distortion rows (one per quantization)."""
  rd_rows = rate_distortion.autoencoder_rows(workdir, images_u8, label=f"K={k}")
  by_quant = {r["quant"]: r for r in rd_rows}
  row = {"K": k, "val_bce": last_metrics(workdir)["val_loss"]}
  for quant in compress.QUANTS:
    row[f"bytes_{quant}"] = by_quant[quant]["bytes_per_image"]
    row[f"ratio_{quant}"] = by_quant[quant]["ratio"]
    row[f"psnr_{quant}"] = by_quant[quant]["psnr"]
    row[f"ssim_{quant}"] = by_quant[quant]["ssim"]
  return row, rd_rows


def run(out: str, ks: Sequence[int] = KS, epochs: int = 5, overrides: dict | None = None,
        jpeg_qualities: Sequence[int] = rate_distortion.JPEG_QUALITIES,
        max_images: int | None = None) -> list[dict]:
  """Trains every K (resuming runs already in `out`) and writes the table and plot."""
  from ae_jax.training import train  # pylint: disable=import-outside-toplevel  (TensorFlow: seconds)
  configs = [make_config(k, epochs, overrides) for k in ks]  # every bad override first
  if configs[0].loss != "bce":
    raise UserError("the sweep reports the validation BCE: keep loss=bce")
  try:
    for config in configs:  # before anything is written
      config_lib.validate(config)
  except UserError as e:
    raise UserError(_in_sweep_terms(str(e))) from None
  # Its tables and plot are rewritten on every rerun: they are made from the runs in `out`.
  files.prepare_output_folder(out, (), overwrite=True)
  os.makedirs(os.path.join(out, "runs"), exist_ok=True)
  rows, rd_rows, images = [], [], None
  # One line for the whole sweep (on a terminal): each K's training and measurement, then
  # the baselines; the epoch lines scroll above it.
  with progress.bar(len(ks) + 1, "sweep", "K") as line:
    for k, config in zip(ks, configs):
      workdir = os.path.join(out, "runs", f"K{k}")
      line.set_postfix_str(f"K={k}")
      print(f"K={k}: training {epochs} epochs in {workdir}", file=sys.stderr)
      try:
        train.train_and_evaluate(config, workdir)
      except UserError as e:
        message = _in_sweep_terms(str(e))
        if "--restart" in message:
          # The sweep has no --restart: the way to start a K over is to move its folder.
          message += f" (in the sweep: move {workdir} away instead)"
        raise UserError(message) from None
      if images is None:
        images, _ = rate_distortion.load_eval_images(workdir, max_images=max_images)
      row, points = sweep_row(k, workdir, images)
      rows.append(row)
      rd_rows += points
      line.update()
    line.set_postfix_str("PNG and JPEG")
    rd_rows += [rate_distortion.png_row(images)] + rate_distortion.jpeg_rows(images,
                                                                            jpeg_qualities)
    line.update()
  # Rewritten whole: the seven files appear together, never the last run's beside these.
  with files.output_set(out, OUTPUTS, overwrite=True,
                        what="the sweep's tables and sweep.png") as staging:
    rate_distortion.write_table(staging, "sweep", rows, COLUMNS)
    rate_distortion.write_table(staging, "sweep_rd", rd_rows, rate_distortion.COLUMNS)
    rate_distortion.plot(os.path.join(staging, "sweep.png"), rd_rows,
                         f"dense autoencoder, K = {','.join(map(str, ks))} ({epochs} epochs) "
                         f"vs JPEG and PNG, {len(images)} test images", images[0].size)
  return rows


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.OneLineParser(prog="python -m ae_jax.sweep",
                             description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="folder for the runs, tables and plot")
  parser.add_argument("--ks", default=",".join(map(str, KS)), help="code sizes K")
  parser.add_argument("--epochs", type=int, default=5, help="epochs per K")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="config override, e.g. --set batch_size=256 (repeatable)")
  parser.add_argument("--jpeg_qualities",
                      default=",".join(map(str, rate_distortion.JPEG_QUALITIES)))
  parser.add_argument("--max_images", type=cli.positive_int,
                      help="measure on the first N eval images")
  args = parser.parse_args(argv)
  cli.quiet_logs()

  def work() -> Report | int:
    ks = rate_distortion.parse_ints(args.ks)
    if min(ks) < 1 or args.epochs < 1:
      raise UserError("--ks and --epochs must be positive integers")
    qualities = rate_distortion.parse_qualities(args.jpeg_qualities)
    from ae_jax.training import train  # pylint: disable=import-outside-toplevel  (as in run)
    try:
      rows = run(args.out, ks, args.epochs, parse_overrides(args.set), qualities,
                 args.max_images)
    except train.Interrupted as e:  # the run being trained saved a checkpoint
      print(f"interrupted: {e}", file=sys.stderr)
      return 128 + e.signum
    return Report(os.path.join(args.out, "sweep.md"),
                  f"wrote {len(rows)} rows and sweep.png to {args.out}")
  return run_cli(work)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
