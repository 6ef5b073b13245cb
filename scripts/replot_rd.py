"""Redraws a rate-distortion plot from a table `python -m ae_jax.rate_distortion` wrote,
without measuring anything again: its rd.json, or its rd.md (as committed under
benchmarks/results).

  python scripts/replot_rd.py benchmarks/results/20261202-xeon-codec_rd.md \
      docs/compression/learned_codec_rd.png

docs/compression/learned_codec_rd.png is made this way from the committed table of
scripts/codec_results.sh's run (the values as rd.md rounds them). The title is the table's
dataset and image count, with the number of runs; rd.md names them.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ae_jax.compression import rate_distortion  # pylint: disable=wrong-import-position

NUMBERS = ("bytes_per_image", "psnr", "ssim")


def read_rows(path: str) -> tuple[list[dict], str]:
  """(rows, the table's first line: what was measured) of an rd.md, or (rows, '') of an
  rd.json."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  if path.endswith(".json"):
    return json.loads(text), ""
  lines = [l for l in text.splitlines() if l.startswith("| ")]
  head = [c.strip() for c in lines[0].strip("|").split("|")]
  rows = [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[1:]]
  for row in rows:
    for key in NUMBERS:
      row[key] = float(row[key])
  return rows, text.splitlines()[0]


def main(argv) -> int:
  if len(argv) != 2:
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2
  table, out = argv
  rows, source = read_rows(table)
  runs = source.count("checkpoint step")
  what = source.split(";")[0] or os.path.basename(table)
  title = what + (f", {runs} runs (named in {os.path.basename(table)})" if runs else "")
  raw = round(rows[0]["bytes_per_image"] * float(rows[0]["ratio"]))  # ratio = raw / bytes
  rate_distortion.plot(out, rows, title, raw)
  print(f"wrote {out}: {len(rows)} rows")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
