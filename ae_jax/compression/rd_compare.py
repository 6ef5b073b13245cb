"""Rate-distortion curves side by side: rows of another codec's results read from a file
(`--extra`, e.g. CompressAI's, measured in its own environment), and the BD-rate of every
curve against every classic codec's.

A curve is the rows of one `method` (PSNR against bytes/image): a JPEG count over its
qualities, one autoencoder quantization over the runs measured (a K sweep, one run per
λ), an `--extra` method over its settings.
"""
from __future__ import annotations

import json
import math
import os
from typing import Sequence

from ae_jax.compression import bd_rate
from ae_jax.core.errors import UserError

# The classic curves every method is compared with (PNG is lossless: one point, no curve).
ANCHORS = ("JPEG file", "JPEG, tables shared", "JPEG, scan only", "WebP file",
           "WebP, VP8 payload", "AVIF file", "AVIF, mdat payload")
EXTRA_FIELDS = ("method", "setting", "bytes_per_image", "psnr", "ssim")
COUNTS = ("payload", "file", "tables shared")  # the last: JPEG's rows of rate_distortion


# ------------------------------------------------------------------- --extra rows

def read_extra(path: str) -> list[dict]:
  """The rows of a JSON list or a JSONL file (one object per line), each with method,
  setting, bytes_per_image, psnr and ssim, and optionally `count` (`payload`, the default:
  a bitstream without container; `file`; or `tables shared`). An `rd.json` this tool wrote
  is such a list: its lossless rows (psnr null, as PNG's) come back as they were, rows
  with no curve."""
  try:
    with open(path) as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise UserError(f"cannot read --extra {path} ({getattr(e, 'strerror', None) or e}): "
                    "give a JSON or JSONL file of result rows") from None
  if text.lstrip().startswith("["):
    try:
      rows = json.loads(text)
    except json.JSONDecodeError as e:
      raise UserError(f"--extra {path} is not valid JSON ({e.msg} at line {e.lineno}): give "
                      "a JSON list of rows, or one JSON object per line") from None
  else:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
      if line.strip():
        try:
          rows.append(json.loads(line))
        except json.JSONDecodeError as e:
          raise UserError(f"--extra {path} line {number} is not JSON ({e.msg}): give one "
                          "JSON object per line, or a JSON list") from None
  if not rows:
    raise UserError(f"--extra {path} holds no rows: give one JSON object per result")
  return [_checked(row, path, number) for number, row in enumerate(rows, 1)]


def _checked(row, path: str, number: int) -> dict:
  where = f"--extra {path} row {number}"
  if not isinstance(row, dict):
    raise UserError(f"{where} is not a JSON object: give objects with the fields "
                    f"{', '.join(EXTRA_FIELDS)}")
  missing = [k for k in EXTRA_FIELDS if k not in row]
  if missing:
    raise UserError(f"{where} lacks {', '.join(missing)}: each row needs "
                    f"{', '.join(EXTRA_FIELDS)}")
  if not isinstance(row["method"], str) or not row["method"].strip():
    raise UserError(f"{where}: method must be a non-empty string, the curve's name")
  lossless = row["psnr"] is None and row.get("mse") == 0  # as rate_distortion writes PNG
  for key in ("bytes_per_image", "psnr", "ssim"):
    if key == "psnr" and lossless:
      continue
    if isinstance(row[key], bool) or not isinstance(row[key], (int, float)):
      raise UserError(f"{where}: {key}={row[key]!r} must be a number"
                      + (" (null only in a lossless row, with mse 0)" if key == "psnr" else ""))
  if not (math.isfinite(row["bytes_per_image"]) and row["bytes_per_image"] > 0):
    raise UserError(f"{where}: bytes_per_image={row['bytes_per_image']} must be a number > 0")
  count = row.get("count", "payload")
  if count not in COUNTS:
    raise UserError(f"{where}: count={count!r} must be one of {COUNTS} (how its bytes were "
                    "counted)")
  return {**row, "setting": str(row["setting"]), "bytes_per_image": float(row["bytes_per_image"]),
          "psnr": None if lossless else float(row["psnr"]), "ssim": float(row["ssim"]),
          "count": count, "source": os.path.basename(path)}


def refuse_clashes(extra: Sequence[dict], measured: Sequence[str], runs: bool = True) -> None:
  """An --extra method named like one this command measures (`measured`: its classic
  codecs' curves; `runs`: it measures autoencoder runs too) would merge into its curve.
  A classic codec's rows from an earlier report ('JPEG, scan only' with --codecs none)
  are that codec's curve here, the anchor of BD-rates as if measured."""
  for row in extra:
    name = row["method"]
    if name in measured or (runs and name.startswith("autoencoder")):
      raise UserError(f"--extra row of method {name!r} (from {row['source']}) is named like a "
                      "method this command measures: rename it in the file, e.g. "
                      f"'{name} (extra)'")


# -------------------------------------------------------------------------- BD-rate

def curves(rows: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
  """{method: [(bytes/image, PSNR)]} in the rows' order of methods; lossless rows (PSNR
  None, as PNG's) have no curve."""
  out: dict[str, list[tuple[float, float]]] = {}
  for r in rows:
    if r["psnr"] is not None:
      out.setdefault(r["method"], []).append((r["bytes_per_image"], r["psnr"]))
  return out


def bd_rows(rows: Sequence[dict], psnr_range: tuple[float, float] | None = None,
            method: str = "pchip", anchors: Sequence[str] = ANCHORS) -> list[dict]:
  """The BD-rate of every curve (PNG aside) against every anchor curve among `rows` (the
  classic codecs', and any other named in `anchors`, e.g. an --extra peer's): one row per
  pair, its `percent` and PSNR range, or None and the `reason`."""
  by_method = curves(rows)
  anchors = [a for a in dict.fromkeys(anchors) if a in by_method]
  out = []
  for test, points in by_method.items():
    if test == "PNG":
      continue
    for anchor in anchors:
      if anchor == test:
        continue
      row = {"method": test, "anchor": anchor, "interpolation": method,
             "range": "overlap" if psnr_range is None else f"{psnr_range[0]:g}-{psnr_range[1]:g} dB"}
      try:
        bd = bd_rate.bd_rate(by_method[anchor], points, method=method, psnr_range=psnr_range)
        row.update(percent=bd.percent, lo=bd.lo, hi=bd.hi, reason=None)
      except bd_rate.CurveError as e:
        row.update(percent=None, lo=None, hi=None, reason=str(e))
      out.append(row)
  return out


def bd_markdown(table: Sequence[dict], title: str) -> str:
  """One markdown table: a row per method, a column per anchor; each cell the BD-rate in %
  (its PSNR range when narrower than the range asked for), or n/a."""
  anchors = list(dict.fromkeys(r["anchor"] for r in table))
  methods = list(dict.fromkeys(r["method"] for r in table))
  cell = {(r["method"], r["anchor"]): r for r in table}
  lines = [f"{title}\n", "| method | " + " | ".join(f"vs {a}" for a in anchors) + " |",
           "|---|" + "---|" * len(anchors)]
  for m in methods:
    cells = []
    for a in anchors:
      r = cell.get((m, a))
      if r is None:
        cells.append("–")
      elif r["percent"] is None:
        cells.append("n/a")
      else:
        cells.append(f"{r['percent']:+.1f} % ({r['lo']:.1f}–{r['hi']:.1f} dB)")
    lines.append(f"| {m} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_bd(out: str, overlap: Sequence[dict], ranged: Sequence[dict],
             psnr_range: tuple[float, float], interpolation: str, source: str) -> None:
  """rd_bd.md (two tables: over each pair's shared PSNR range, and over `psnr_range`) and
  rd_bd.json (every pair, with why n/a where it is)."""
  note = ("BD-rate (%) of each method (rows) against each classic codec and --extra codec "
          "(columns): negative = "
          f"fewer bytes at equal PSNR; {interpolation} interpolation of log(bytes) in PSNR; in "
          "brackets the PSNR range integrated; n/a: fewer than 4 points or no shared range "
          "(rd_bd.json says which).")
  with open(os.path.join(out, "rd_bd.md"), "w") as f:
    f.write(f"{source}\n\n{note}\n\n")
    f.write(bd_markdown(overlap, "**Over the PSNR range both curves cover**") + "\n")
    f.write(bd_markdown(ranged, f"**Over {psnr_range[0]:g}–{psnr_range[1]:g} dB** (where "
                                "both curves reach it)"))
  with open(os.path.join(out, "rd_bd.json"), "w") as f:
    json.dump(list(overlap) + list(ranged), f, indent=1)


def main(argv: Sequence[str] | None = None) -> int:
  """python -m ae_jax.rd_compare RD_JSON --anchor METHOD [--range LO,HI]: the BD-rate of every
  curve of a rate_distortion rd.json against the curve of METHOD (e.g. an --extra peer's),
  over their shared PSNR range and over --range, without measuring anything again."""
  from ae_jax.core import cli  # pylint: disable=import-outside-toplevel
  from ae_jax.core.errors import run_cli  # pylint: disable=import-outside-toplevel
  parser = cli.OneLineParser(prog="python -m ae_jax.rd_compare",
                             description=main.__doc__.split("\n")[0])
  parser.add_argument("rows", help="an rd.json written by python -m ae_jax.rate_distortion")
  parser.add_argument("--anchor", required=True, help="the method to compare against")
  parser.add_argument("--range", default="21,25", help="a PSNR range LO,HI in dB")
  args = parser.parse_args(argv)

  def work():
    try:
      with open(args.rows) as f:
        rows = [r for r in json.load(f) if isinstance(r, dict)
                and isinstance(r.get("psnr"), (int, float))]  # lossless rows: no curve
    except (OSError, ValueError) as e:
      raise UserError(f"cannot read {args.rows} ({type(e).__name__}): give the rd.json "
                      "that python -m ae_jax.rate_distortion wrote") from None
    if args.anchor not in curves(rows):
      raise UserError(f"{args.rows} has no rows of method {args.anchor!r}: choose one of "
                      f"{sorted(curves(rows))}")
    try:
      lo, hi = (float(v) for v in args.range.split(","))
    except ValueError:
      raise UserError(f"--range {args.range!r}: give it as LO,HI in dB, e.g. 21,25") from None
    print(bd_markdown(bd_rows(rows, anchors=(args.anchor,)),
                      "**Over the PSNR range both curves cover**"))
    print(bd_markdown(bd_rows(rows, (lo, hi), anchors=(args.anchor,)),
                      f"**Over {lo:g}–{hi:g} dB**"))
  return run_cli(work)


if __name__ == "__main__":
  import sys  # pylint: disable=import-outside-toplevel
  sys.exit(main())
