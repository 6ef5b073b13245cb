"""Side-by-side benchmark: ae_jax against Keras 3 (TensorFlow, JAX) and PyTorch, one command.

  python benchmarks/run.py                                   # all, 10 epochs, 3 repeats
  python benchmarks/run.py --models dense --epochs 10 --repeats 3
  python benchmarks/run.py --epochs 1 --steps_per_epoch 20 --repeats 1   # smoke run
  python benchmarks/run.py --models deep sparse --epochs 3 --repeats 3    # the model zoo's
  python benchmarks/run.py --models vqvae --frameworks ae_jax,torch,torch-1thread --epochs 3

Every (framework, model) runs as its own process (benchmarks/peers/*.py), in interleaved
order (repeat 1: A B C D, repeat 2: A B C D, ...), so that a slow spell of the machine hits
all of them alike. Repeat r trains with seed --seed + r (every framework the same seeds), so
the final val loss is compared over seeds, not one draw: after 2 epochs of the denoising
model one seed to the next moves it by ~3%. Medians over the repeats (and the val loss's
range) go into a markdown table, printed and written to benchmarks/results/<timestamp>.md
(the raw JSON records to <timestamp>.jsonl).

With the dense model, each ae_jax repeat is preceded by a probe of the machine's matmul
peak (benchmarks/peers/matmul_peak.py, a 2048x2048 float32 product), and the table is
followed by ae_jax's dense step as a share of it: the peak measured in the same run, at
the same time, not a figure from another day.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, PEERS)
import common  # noqa: E402  (the models and their batch sizes; numpy, no framework)

MODELS = common.MODELS
# name -> (script, extra environment)
FRAMEWORKS = {
    "ae_jax": ("ae_jax_runner.py", {}),
    "keras-tensorflow": ("keras_ae.py", {"KERAS_BACKEND": "tensorflow"}),
    "keras-jax": ("keras_ae.py", {"KERAS_BACKEND": "jax"}),
    "torch": ("torch_ae.py", {}),
    # Not in the default set: PyTorch on one thread. On a 2-core machine that another job
    # keeps busy, its default 2 threads wait on each other (the deep step here: 4 ms with
    # 1 thread, 280 ms with 2, 2026-12-02), so this row shows it at its best there.
    "torch-1thread": ("torch_ae.py", {"OMP_NUM_THREADS": "1"}),
    # Not in the default set: Keras/TF with the denoising noise added to the train split once
    # before fit, as the lecture's code does (the keras-tensorflow row draws it per step in
    # the model, as ae_jax does): the denoising models only.
    "keras-tensorflow-noise-once": ("keras_ae.py", {"KERAS_BACKEND": "tensorflow"}),
}
FRAMEWORK_ARGS = {"keras-tensorflow-noise-once": ["--noise", "once"]}
DEFAULT_FRAMEWORKS = ("ae_jax", "keras-tensorflow", "keras-jax", "torch")
# A model a framework's script above does not train: its own script, or no peer at all
# (the table says so instead of "failed").
MODEL_SCRIPTS = {"vqvae": {"torch": "torch_vqvae.py", "torch-1thread": "torch_vqvae.py"}}
NO_PEER = {"vqvae": ("keras-tensorflow", "keras-jax", "keras-tensorflow-noise-once"),
           **{m: ("keras-tensorflow-noise-once",) for m in common.MODELS
              if m not in common.NOISY and m != "vqvae"}}
NUMERIC = ("train_seconds", "seconds_per_epoch", "first_epoch_seconds", "total_train_seconds",
           "setup_seconds", "first_step_seconds", "compile_seconds", "process_seconds",
           "peak_rss_mb",
           "final_val_loss", "final_val_objective", "num_params", "steps_per_epoch", "epochs",
           "batch_size")
# Fields whose range over the repeats the table shows next to the median.
RANGES = {"final_val_loss": "val_loss_range", "first_step_seconds": "first_step_range",
          "final_val_objective": "val_objective_range"}
# The dense train step's matmuls: forward 2, backward 3 (no input gradient), batch 128,
# 784 -> 64 -> 784.
DENSE_STEP_FLOP = 5 * 2 * 128 * 784 * 64
PACKAGES = ("jax", "flax", "optax", "keras", "tensorflow-cpu", "tensorflow", "torch", "numpy")


def peer_record(cmd: list[str], label: str, log, **run_kwargs) -> dict | None:
  """Runs a peer process (`run_kwargs`: subprocess.run's env, timeout...) and returns the
  JSON record on the last of its output lines that start with '{'; None if it timed out,
  failed or printed none (its stderr goes to `log`, under `label`; failures also to
  stderr)."""
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, **run_kwargs)
  except subprocess.TimeoutExpired as e:
    log.write(f"## {label}: timed out after {e.timeout} s\n")
    return None
  log.write(f"## {label} (rc {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}\n")
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  if proc.returncode or not lines:
    print(f"  failed (rc {proc.returncode}): {proc.stderr.strip()[-600:]}", file=sys.stderr)
    return None
  return json.loads(lines[-1])


def run_one(framework: str, model: str, seed: int, args: argparse.Namespace,
            log) -> dict | None:
  """Runs one peer process; returns its JSON record, or None (the error goes to the log)."""
  script, env = FRAMEWORKS[framework]
  script = MODEL_SCRIPTS.get(model, {}).get(framework, script)
  cmd = [sys.executable, os.path.join(PEERS, script), "--model", model,
         "--epochs", str(args.epochs), "--seed", str(seed), *FRAMEWORK_ARGS.get(framework, [])]
  if args.steps_per_epoch:
    cmd += ["--steps_per_epoch", str(args.steps_per_epoch)]
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
  print(f"[{time.strftime('%H:%M:%S')}] {framework} {model} seed {seed} ...", file=sys.stderr,
        flush=True)
  # ae_jax's compilation cache (see the table's notes): the run's own, or with --cold a new
  # one for every process.
  with tempfile.TemporaryDirectory(prefix="ae_jax_bench_cold_") as cold:
    if framework == "ae_jax":
      env["JAX_COMPILATION_CACHE_DIR"] = cold if args.cold else args.ae_jax_cache_dir
    record = peer_record(cmd, f"{framework} {model}", log, env=env, timeout=args.timeout)
  if record is None:
    return None
  print(f"  {record['seconds_per_epoch']:.3f} s/epoch, val {record['final_val_loss']:.4f}, "
        f"process {record['process_seconds']:.1f} s", file=sys.stderr, flush=True)
  return record


def probe_peak(log) -> float | None:
  """GFLOP/s of the matmul probe, run now in its own process (None if it failed)."""
  proc = subprocess.run([sys.executable, os.path.join(PEERS, "matmul_peak.py")],
                        capture_output=True, text=True, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  if proc.returncode or not lines:
    log.write(f"## matmul_peak (rc {proc.returncode})\n{proc.stderr[-2000:]}\n")
    return None
  return json.loads(lines[-1])["peak_gflops"]


def peak_share(records: list[dict]) -> str | None:
  """ae_jax's dense step against the matmul peak probed in this run (None: nothing to say;
  also with one epoch, whose time holds the compile)."""
  pairs = [(r["seconds_per_epoch"] / r["steps_per_epoch"], r["peak_gflops"]) for r in records
           if r.get("peak_gflops") and r.get("steps_per_epoch") and r.get("epochs", 2) > 1]
  if not pairs:
    return None
  peak = max(p for _, p in pairs)
  step_s = statistics.median(s for s, _ in pairs)
  gflops = DENSE_STEP_FLOP / step_s / 1e9
  each = [100 * DENSE_STEP_FLOP / s / (p * 1e9) for s, p in pairs]
  lowest = min(p for _, p in pairs)
  return (f"ae_jax dense: {DENSE_STEP_FLOP / 1e6:.1f} MFLOP of matmuls per step in "
          f"{1000 * step_s:.3f} ms (median) = {gflops:.0f} GFLOP/s = "
          f"**{100 * gflops / peak:.0f}% of the matmul peak** measured in this run "
          f"({peak:.0f} GFLOP/s, the best of {len(pairs)} probes of a 2048² float32 product, "
          f"{lowest:.0f}–{peak:.0f}, one just before each ae_jax dense repeat); each repeat against "
          f"its own probe: {statistics.median(each):.0f}% median "
          f"({min(each):.0f}–{max(each):.0f}%).")


def fastest_epochs(records: dict, frameworks: list[str], models: list[str]) -> list[str]:
  """Per model, each framework's fastest epoch (epochs 2..N, over all repeats) and ae_jax's
  ratio to it. Other work on the machine only ever adds time, so the minima compare the
  frameworks at the machine's quickest, where the medians also hold its slow spells."""
  lines = []
  for model in models:
    best = {fw: min((t for r in records.get((fw, model), []) for t in r["epoch_seconds"][1:]),
                    default=None) for fw in frameworks}
    ours = best.get("ae_jax")
    if ours is None:
      continue
    others = [f"{fw} {t:.3f} s ({ours / t:.2f}×)" for fw, t in best.items()
              if fw != "ae_jax" and t]
    lines.append(f"{model}, fastest epoch: ae_jax {ours:.3f} s" +
                 (f"; {', '.join(others)}" if others else "") + ".")
  return lines


def medians(records: list[dict]) -> dict:
  out = {"repeats": len(records)}
  for key in NUMERIC:
    values = [r[key] for r in records if r.get(key) is not None]
    out[key] = statistics.median(values) if values else None
    if key in RANGES:
      out[RANGES[key]] = (min(values), max(values)) if len(values) > 1 else None
  return out


def _with_range(s: dict, key: str, range_key: str, spec: str) -> str:
  """The median of `key`, and its range over the repeats in brackets."""
  text = _fmt(s[key], spec)
  if s.get(range_key):
    text += " ({}–{})".format(*(format(v, spec) for v in s[range_key]))
  return text


def _fmt(x, spec: str) -> str:
  return "—" if x is None else format(x, spec)


def _ratio(a, b) -> str:
  return "—" if a is None or not b else f"{a / b:.2f}×"


def _percent(a, b) -> str:
  """(a - b) / b in percent, signed."""
  return "—" if a is None or not b else f"{100 * (a - b) / b:+.1f}%"


def table(summary: dict, frameworks: list[str], models: list[str]) -> str:
  """Markdown table; ratio columns are ae_jax's value divided by the row's (< 1: ae_jax wins)."""
  head = ("| framework | model | train s (epochs 2..N) | s/epoch | ms/step | 1st epoch s | "
          "setup s | 1st step done s (range) | process s | peak RSS MiB | "
          "final val loss (range) | params | "
          "ae_jax ÷ this: s/epoch | process | RSS | ae_jax val loss vs this |")
  columns = head.count("|") - 1
  rows = [head, "|" + "---|" * columns]
  for model in models:
    ours = summary.get(("ae_jax", model))
    for fw in frameworks:
      s = summary.get((fw, model))
      if s is None:
        why = "no peer" if fw in NO_PEER.get(model, ()) else "failed"
        rows.append(f"| {fw} | {model} | {why} |" + " |" * (columns - 3))
        continue
      steps = s["steps_per_epoch"]
      ms_step = 1000 * s["seconds_per_epoch"] / steps if steps else None
      get = lambda k: ours.get(k) if ours else None
      rows.append(
          f"| {fw} | {model} | {_fmt(s['train_seconds'], '.2f')} | "
          f"{_fmt(s['seconds_per_epoch'], '.3f')} | {_fmt(ms_step, '.1f')} | "
          f"{_fmt(s['first_epoch_seconds'], '.2f')} | {_fmt(s['setup_seconds'], '.1f')} | "
          f"{_with_range(s, 'first_step_seconds', 'first_step_range', '.1f')} | "
          f"{_fmt(s['process_seconds'], '.1f')} | {_fmt(s['peak_rss_mb'], '.0f')} | "
          f"{_with_range(s, 'final_val_loss', 'val_loss_range', '.4f')} | "
          f"{_fmt(s['num_params'], ',.0f')} | "
          f"{_ratio(get('seconds_per_epoch'), s['seconds_per_epoch'])} | "
          f"{_ratio(get('process_seconds'), s['process_seconds'])} | "
          f"{_ratio(get('peak_rss_mb'), s['peak_rss_mb'])} | "
          f"{_percent(get('final_val_loss'), s['final_val_loss'])} |")
  return "\n".join(rows)


OBJECTIVES = {"sparse": "BCE + 1e-4 × the mean of each image's sum |code|",
              "vqvae": "BCE + 0.25 × the commitment loss"}


def objectives(summary: dict, frameworks: list[str], models: list[str]) -> list[str]:
  """Per model that trains on more than its reconstruction loss (sparse: BCE + the L1
  penalty; vqvae: + the commitment loss), each framework's final val objective: the table's val loss is the BCE alone."""
  lines = []
  for model in models:
    found = {fw: summary[(fw, model)] for fw in frameworks
             if summary.get((fw, model), {}).get("final_val_objective") is not None}
    if not found:
      continue
    ours = found.get("ae_jax", {}).get("final_val_objective")
    each = [f"{fw} {_with_range(s, 'final_val_objective', 'val_objective_range', '.4f')}"
            + (f" (ae_jax {_percent(ours, s['final_val_objective'])})"
               if fw != "ae_jax" and ours is not None else "")
            for fw, s in found.items()]
    what = OBJECTIVES.get(model, "the reconstruction loss plus the model's terms")
    lines.append(f"{model}, final val objective (the loss trained on: {what}; the table's val "
                 f"loss is the BCE alone): " + "; ".join(each) + ".")
  return lines


def _load_warning(load_before) -> list[str]:
  """A note when other work was running: multi-threaded peers (PyTorch most) slow down most."""
  if load_before[0] < 0.5 * (os.cpu_count() or 1):
    return []
  return [f"**Warning: the machine was busy (load average {load_before[0]:.1f} on "
          f"{os.cpu_count()} CPUs) — timings are not representative.**", ""]


def _versions() -> str:
  found = []
  for name in PACKAGES:
    try:
      found.append(f"{name} {importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      pass
  return ", ".join(found)


def _git_commit() -> str:
  try:
    return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], text=True,
                          capture_output=True).stdout.strip() or "?"
  except OSError:
    return "?"


def _cpu_model() -> str:
  """The CPU's name as Linux reports it (/proc/cpuinfo), else Python's guess."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frameworks", default=",".join(DEFAULT_FRAMEWORKS),
                      help=f"comma-separated subset of {','.join(FRAMEWORKS)} (default: "
                      f"{','.join(DEFAULT_FRAMEWORKS)})")
  parser.add_argument("--models", nargs="+", default=["dense,conv,denoise"],
                      help=f"subset of {','.join(MODELS)}, separated by commas or spaces "
                      "(default: the lecture's dense,conv,denoise)")
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--steps_per_epoch", type=int, default=None,
                      help="train steps per epoch (default: the whole split, 468)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0, help="repeat r uses seed + r")
  parser.add_argument("--timeout", type=int, default=3600, help="seconds per process")
  parser.add_argument("--out_dir", default=os.path.join(HERE, "results"))
  parser.add_argument("--cold", action="store_true",
                      help="a new, empty compilation cache for every ae_jax process: each "
                      "one compiles, as the first run on a machine does (the start-up "
                      "overhead with nothing cached)")
  args = parser.parse_args()
  frameworks = [f for f in args.frameworks.split(",") if f]
  models = [m for arg in args.models for m in arg.split(",") if m]
  bad = [f for f in frameworks if f not in FRAMEWORKS] + [m for m in models if m not in MODELS]
  if bad:
    parser.error(f"unknown framework or model: {', '.join(bad)}")

  os.makedirs(args.out_dir, exist_ok=True)
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  base = os.path.join(args.out_dir, stamp)
  load_before = os.getloadavg()
  t0 = time.time()
  records: dict[tuple[str, str], list[dict]] = {}
  with open(base + ".log", "w") as log, open(base + ".jsonl", "w") as raw, \
       tempfile.TemporaryDirectory(prefix="ae_jax_bench_jit_") as args.ae_jax_cache_dir:
    for r in range(args.repeats):
      for model in models:
        for fw in frameworks:
          if fw in NO_PEER.get(model, ()):
            continue
          peak = probe_peak(log) if (fw, model) == ("ae_jax", "dense") else None
          record = run_one(fw, model, args.seed + r, args, log)
          if record is not None:
            record["repeat"] = r
            if peak is not None:
              record["peak_gflops"] = peak
            raw.write(json.dumps(record) + "\n")
            raw.flush()
            records.setdefault((fw, model), []).append(record)
  summary = {key: medians(recs) for key, recs in records.items()}
  share = peak_share(records.get(("ae_jax", "dense"), []))

  batches = {m: common.batch_size(m) for m in models}
  batch = ", ".join(f"{b} ({', '.join(m for m in models if batches[m] == b)})"
                    for b in sorted(set(batches.values()))) if len(set(batches.values())) > 1 \
      else str(next(iter(batches.values()), common.BATCH_SIZE))
  steps = f"{args.steps_per_epoch} steps/epoch (capped)" if args.steps_per_epoch else \
      "whole epochs (" + ", ".join(
          f"{60000 // b} steps at batch {b}" for b in sorted(set(batches.values()))) + ")"
  text = "\n".join([
      f"# ae_jax vs peers — {stamp}",
      "",
      f"Command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`",
      f"Fashion-MNIST, batch {batch}, Adam 1e-3, BCE; {args.epochs} epochs, {steps}; "
      f"median of {args.repeats} interleaved repeat(s); wall time {time.time() - t0:.0f} s.",
      f"Machine: {_cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, "
      f"Python {platform.python_version()}; "
      f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}. "
      f"git {_git_commit()}. {_versions()}.",
      "",
      *_load_warning(load_before),
      table(summary, frameworks, models),
      "",
      *([share, ""] if share else []),
      *[f"- {line}" for line in fastest_epochs(records, frameworks, models)],
      *[f"- {line}" for line in objectives(summary, frameworks, models)], "",
      "s/epoch: median training time of the epochs after the first (validation excluded); "
      "train s: their sum (with one epoch: epoch 1); 1st epoch s includes compilation; setup s: "
      "process start → first epoch starts (imports, data, model); 1st step done s: process "
      "start → the first training step has finished (the start-up overhead, compile included; "
      "ae_jax: its first jit call; Keras: not measured, a per-batch callback would change its "
      "dispatch). " + (
          "--cold: every ae_jax process had a new, empty compilation cache (each one "
          "compiled). " if args.cold else
          "ae_jax's processes share one persistent compilation cache, new for this "
          "run (as launch.py keeps one): its first repeat of a model compiles, later ones "
          "load (the range shows both). ") + "process s: whole process, "
      "validation and (ae_jax) checkpoints, plots and logs included. Final val loss: median "
      "over the repeats, which use seeds --seed, --seed + 1, ... (range in brackets). Ratios "
      "are ae_jax ÷ the row's framework on the same model: below 1 means ae_jax is faster or "
      "lighter; the last column is ae_jax's final val loss (median) relative to the row's.",
  ])
  with open(base + ".md", "w") as f:
    f.write(text + "\n")
  print(text)
  print(f"\nwritten: {base}.md ({base}.jsonl, {base}.log)", file=sys.stderr)


if __name__ == "__main__":
  main()
