"""Each framework's fastest epoch in earlier benchmark runs, from their .jsonl records.

  python benchmarks/fastest_epochs.py benchmarks/results/20261128-*.jsonl

The same lines `run.py` now prints under its table (`run.fastest_epochs`): per model, the
fastest epoch after the first over all repeats, and ae_jax's ratio to each peer's.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import run  # noqa: E402  (standard library only at import)


def main(paths: list[str]) -> None:
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing or not paths:
    sys.exit(f"error: no such results file {missing[0]!r}: give run.py's .jsonl records, "
             "e.g. benchmarks/results/*.jsonl" if missing else
             "error: give run.py's .jsonl records, e.g. benchmarks/results/*.jsonl")
  for path in paths:
    records: dict = {}
    with open(path) as f:
      for line in f:
        if line.strip():
          r = json.loads(line)
          records.setdefault((r["framework"], r["model"]), []).append(r)
    frameworks = list(dict.fromkeys(fw for fw, _ in records))
    models = list(dict.fromkeys(m for _, m in records))
    for line in run.fastest_epochs(records, frameworks, models):
      print(f"{os.path.basename(path)}: {line}")


if __name__ == "__main__":
  main(sys.argv[1:])
