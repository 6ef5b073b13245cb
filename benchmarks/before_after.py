"""ae_jax's lecture models before and after a change: two checkouts side by side, interleaved.

  git worktree add /work/wt_old 8537bb8          # the commit before the model-zoo redesign
  python benchmarks/before_after.py --old /work/wt_old --rounds 3 --epochs 2

Runs each checkout's own `benchmarks/peers/ae_jax_runner.py --model M` (cwd and PYTHONPATH
that checkout, so each imports its own ae_jax and configs) for every model, alternating the
checkouts (round r: old then new for even r, new then old for odd r, so neither always runs
first), with seed --seed + r for both. Each checkout has its own compilation cache, new for
this run: round 0 compiles, later rounds load (s/epoch leaves out epoch 1 either way).
Prints a table of the medians per checkout (s/epoch, final val loss, peak RSS) and new ÷ old,
and writes it to benchmarks/results/<timestamp>-before_after.md (raw records: .jsonl).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _git(tree: str, *args: str) -> str:
  return subprocess.run(["git", "-C", tree, *args], capture_output=True, text=True
                        ).stdout.strip()


def _env(tree: str, cache_dir: str) -> dict:
  return {**os.environ, "PYTHONPATH": tree, "TF_CPP_MIN_LOG_LEVEL": "2",
          "JAX_COMPILATION_CACHE_DIR": cache_dir}


def which_ae_jax(tree: str, cache_dir: str) -> str:
  """The ae_jax package a runner in `tree` imports (it must be the tree's own)."""
  return subprocess.run([sys.executable, "-c", "import ae_jax; print(ae_jax.__file__)"],
                        cwd=tree, env=_env(tree, cache_dir), capture_output=True, text=True
                        ).stdout.strip()


def run_one(tree: str, model: str, epochs: int, seed: int, cache_dir: str,
            timeout: int) -> dict | None:
  cmd = [sys.executable, os.path.join(tree, "benchmarks", "peers", "ae_jax_runner.py"),
         "--model", model, "--epochs", str(epochs), "--seed", str(seed)]
  proc = subprocess.run(cmd, cwd=tree, env=_env(tree, cache_dir), capture_output=True,
                        text=True, timeout=timeout)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  if proc.returncode or not lines:
    print(f"  failed (rc {proc.returncode}): {proc.stderr.strip()[-600:]}", file=sys.stderr)
    return None
  return json.loads(lines[-1])


def _median(records: list[dict], key: str) -> float | None:
  values = [r[key] for r in records if r.get(key) is not None]
  return statistics.median(values) if values else None


def paired_ratio(old: list[dict], new: list[dict]) -> str:
  """Geometric mean of new ÷ old s/epoch over the rounds both finished, and each round's.

  Pairs cancel a slow spell that falls on one round, and with an even number of rounds each
  checkout runs first equally often (on a busy machine the second of a pair can run ~15%
  slower: 20261202-120029-before_after.md)."""
  by_round = {r["round"]: r["seconds_per_epoch"] for r in old}
  each = [n["seconds_per_epoch"] / by_round[n["round"]] for n in new if n["round"] in by_round]
  if not each:
    return ""
  geo = math.exp(sum(map(math.log, each)) / len(each))
  return f"**{geo:.3f}×** ({', '.join(f'{x:.2f}' for x in each)})"


def table(records: dict, models: list[str]) -> str:
  rows = ["| model | checkout | s/epoch (median) | s/epoch each round | final val loss "
          "(median) | peak RSS MiB | new ÷ old s/epoch (medians) | new ÷ old per round "
          "(geometric mean) | new vs old val loss |",
          "|---|---|---|---|---|---|---|---|---|"]
  for model in models:
    old, new = records.get(("old", model), []), records.get(("new", model), [])
    s_old, s_new = _median(old, "seconds_per_epoch"), _median(new, "seconds_per_epoch")
    l_old, l_new = _median(old, "final_val_loss"), _median(new, "final_val_loss")
    for name, recs in (("old", old), ("new", new)):
      each = ", ".join(f"{r['seconds_per_epoch']:.3f}" for r in recs) or "failed"
      s, l, m = (_median(recs, k) for k in ("seconds_per_epoch", "final_val_loss",
                                            "peak_rss_mb"))
      ratio = loss = paired = ""
      if name == "new" and s_old and s_new:
        ratio = f"{s_new / s_old:.3f}×"
        paired = paired_ratio(old, new)
      if name == "new" and l_old and l_new:
        loss = f"{100 * (l_new - l_old) / l_old:+.2f}%"
      rows.append(f"| {model} | {name} | {s if s is None else f'{s:.3f}'} | {each} | "
                  f"{l if l is None else f'{l:.4f}'} | {m if m is None else f'{m:.0f}'} | "
                  f"{ratio} | {paired} | {loss} |")
  return "\n".join(rows)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--old", required=True, help="the other checkout (a git worktree)")
  parser.add_argument("--new", default=REPO, help="default: this checkout")
  parser.add_argument("--models", nargs="+", default=["dense", "conv", "denoise"])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0, help="round r uses seed + r")
  parser.add_argument("--timeout", type=int, default=1800, help="seconds per process")
  parser.add_argument("--out_dir", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  base = os.path.join(args.out_dir, f"{stamp}-before_after")
  load_before, t0 = os.getloadavg(), time.time()
  records: dict[tuple[str, str], list[dict]] = {}
  with tempfile.TemporaryDirectory(prefix="before_after_") as tmp, \
       open(base + ".jsonl", "w") as raw:
    caches = {name: os.path.join(tmp, name) for name in trees}
    header = []
    for name, tree in trees.items():
      found = which_ae_jax(tree, caches[name])
      if not found.startswith(tree + os.sep):
        raise SystemExit(f"{name}: {tree} imports ae_jax from {found!r}, not its own")
      dirty = _git(tree, "status", "--porcelain", "--untracked-files=no", "ae_jax", "configs")
      subject = _git(tree, "log", "-1", "--format=%s")
      header.append(f"- {name}: `{tree}` at git {_git(tree, 'rev-parse', '--short', 'HEAD')}"
                    f" ({subject[:70] + '…' if len(subject) > 70 else subject})"
                    + (f" + uncommitted changes to {len(dirty.splitlines())} file(s) in "
                       "ae_jax/, configs/" if dirty else "")
                    + f"; ae_jax from `{os.path.relpath(found, tree)}`")
    for r in range(args.rounds):
      order = ("old", "new") if r % 2 == 0 else ("new", "old")
      for model in args.models:
        for name in order:
          print(f"[{time.strftime('%H:%M:%S')}] round {r} {model} {name} ...", file=sys.stderr,
                flush=True)
          rec = run_one(trees[name], model, args.epochs, args.seed + r, caches[name],
                        args.timeout)
          if rec is None:
            continue
          rec.update(checkout=name, round=r)
          raw.write(json.dumps(rec) + "\n")
          raw.flush()
          records.setdefault((name, model), []).append(rec)
          print(f"  {rec['seconds_per_epoch']:.3f} s/epoch, val {rec['final_val_loss']:.4f}",
                file=sys.stderr, flush=True)
  text = "\n".join([
      f"# ae_jax before and after — {stamp}",
      "",
      f"Command: `python benchmarks/before_after.py {' '.join(sys.argv[1:])}`",
      *header,
      f"{args.rounds} interleaved rounds (seeds {args.seed}..{args.seed + args.rounds - 1}, the "
      f"same for both), {args.epochs} epochs each, whole epochs; wall time "
      f"{time.time() - t0:.0f} s; load average before {load_before[0]:.2f}, after "
      f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs.",
      "",
      table(records, args.models),
      "",
      "s/epoch: the runner's median of the epochs after the first (validation excluded); "
      "the column's median is over the rounds. Final val loss: median over the rounds' seeds. "
      "new ÷ old below 1: the new checkout is faster; per round: each round's new ÷ old "
      "(the two ran back to back), their geometric mean in bold.",
  ])
  with open(base + ".md", "w") as f:
    f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
