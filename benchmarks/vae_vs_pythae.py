"""configs/vae.py in ae_jax beside the same VAE in pythae 0.1.2 (issue #22's side by side),
and with --family one of the research families beside pythae's own model (issue #31).

  python benchmarks/vae_vs_pythae.py                      # 30 epochs each, 1 round
  python benchmarks/vae_vs_pythae.py --rounds 3           # 3 rounds, medians
  python benchmarks/vae_vs_pythae.py --family wae --rounds 3    # configs/wae.py vs WAE_MMD
  python benchmarks/vae_vs_pythae.py --epochs 1 --steps_per_epoch 4 --test_images 20 \
      --num_samples 10 --out /tmp/smoke                   # a smoke run (a minute)
  python benchmarks/vae_vs_pythae.py --tabulate benchmarks/results/*-vae_vs_pythae.jsonl
                                                          # medians over earlier runs
  python benchmarks/vae_vs_pythae.py --tabulate benchmarks/results/*-wae_vs_pythae.jsonl

Run it with a Python that has both ae_jax's requirements and pythae (the bench extra, or
the peers' venv, e.g. /work/venv-bench/bin/python): both peers are started with this
interpreter. One family per invocation (benchmarks/README.md loops over the six).

--family (FAMILIES; default vae) picks the pair of peers: vae is configs/vae.py
(benchmarks/peers/ae_jax_vae.py) against pythae's VAE (peers/pythae_vae.py); iwae, vamp,
beta_tc, wae, rae and aae are configs/iwae.py, vamp.py, beta_tc_vae.py, wae.py, rae.py and
aae.py (ae_jax_vae.py --family F) against pythae's IWAE, VAMP, BetaTCVAE, WAE_MMD, RAE_L2
and Adversarial_AE with its own trainers (peers/pythae_family.py --family F). Each
framework trains in its own process (same architecture, data files, optimizer, batch size,
epochs, seed, threads; see the peers' docstrings for what each measures and how), one
after the other, never at once; round r starts with ae_jax when r is even and with pythae
when it is odd, so a slow spell of the machine is shared out. Each prints one JSON record;
this writes them to <out>/<timestamp>-<family>_vs_pythae.jsonl and a markdown table
(medians over the rounds) to <out>/<timestamp>-<family>_vs_pythae.md (default out:
benchmarks/results; the peers' stderr to .log), and prints the table.

The table, vae: NLL (K-sample importance-sampled bound, nats per test image) +- its
standard error over images, the one-draw -ELBO on the test split, PSNR of the
posterior-mean reconstructions, seconds per epoch (training only, median of epochs 2..N),
peak RSS after training and at the end of the process. A family's: the NLL where there is
one (iwae, vamp, beta_tc), the reconstruction MSE (mean per pixel over the test images,
from the posterior mean or the deterministic code) and PSNR, seconds per epoch, the two
peak RSS. Then the three targets, each met or not: ae_jax's judged metric (METRICS: the NLL
for vae, iwae, vamp and beta_tc, the MSE for wae, rae and aae: what pythae reports for
each) at most 1 % above pythae's, its epoch at most 0.5x pythae's, its peak RSS (after
training) no higher than pythae's.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, os.path.dirname(HERE))
from benchmarks import run as bench_run  # noqa: E402  (peer_record: one peer process)
import common  # noqa: E402  (peers/common.py, on sys.path through benchmarks/run.py)
SCRIPTS = {"ae_jax": "ae_jax_vae.py", "pythae": "pythae_vae.py"}  # --family vae
FAMILY_SCRIPTS = {"ae_jax": "ae_jax_vae.py", "pythae": "pythae_family.py"}  # with --family F
FRAMEWORKS = ("ae_jax", "pythae")
# --family -> the ae_jax config it trains (the peers' own names: beta_tc is beta_tc_vae.py)
CONFIGS = {"vae": "configs/vae.py", "iwae": "configs/iwae.py", "vamp": "configs/vamp.py",
           "beta_tc": "configs/beta_tc_vae.py", "wae": "configs/wae.py",
           "rae": "configs/rae.py", "aae": "configs/aae.py"}
FAMILIES = tuple(CONFIGS)
# The metric judged: what pythae reports for the family (an NLL where the model has one)
METRICS = {"vae": "nll", "iwae": "nll", "vamp": "nll", "beta_tc": "nll",
           "wae": "mse", "rae": "mse", "aae": "mse"}
PACKAGES = ("jax", "jaxlib", "flax", "optax", "tensorflow-cpu", "torch", "pythae", "numpy")
TARGETS = {"nll": 1.01, "mse": 1.01, "seconds_per_epoch": 0.5,
           "peak_rss_train_mb": 1.0, "fd_classifier_samples": 1.01}  # ae_jax <= x * pythae
MEDIAN_KEYS = ("nll", "nll_se", "neg_elbo", "mse", "psnr_db", "seconds_per_epoch",
               "peak_rss_train_mb", "peak_rss_mb", "process_seconds", "nll_seconds",
               "fd_classifier_samples")
FD = "fd_classifier_samples"  # with --classifier: the Fréchet distance of the prior samples


def family_of(args: argparse.Namespace) -> str:
  """The run's --family ('vae' where the namespace has none, as before issue #31)."""
  return getattr(args, "family", "vae")


def metric_text(family: str, record: dict) -> str:
  """The judged metric of a record (or of medians), as 'NLL 238.65' or 'MSE 0.012986'."""
  name = METRICS[family]
  return f"NLL {record[name]:.2f}" if name == "nll" else f"MSE {record[name]:.6f}"


def command(framework: str, args: argparse.Namespace, seed: int) -> list[str]:
  """The peer's command line: the same epochs, seed, threads, K and test images for both
  (and for a family, the same --family first); a smoke run's --steps_per_epoch is, for
  pythae (whose trainer walks the whole loader), that many batches' worth of train images."""
  family = family_of(args)
  if family == "vae":
    cmd = [sys.executable, os.path.join(PEERS, SCRIPTS[framework])]
  else:
    cmd = [sys.executable, os.path.join(PEERS, FAMILY_SCRIPTS[framework]), "--family", family]
  cmd += ["--epochs", str(args.epochs), "--seed", str(seed), "--num_samples",
          str(args.num_samples)]
  if args.threads:
    cmd += ["--threads", str(args.threads)]
  if args.test_images:
    cmd += ["--test_images", str(args.test_images)]
  if args.steps_per_epoch:
    cmd += (["--steps_per_epoch", str(args.steps_per_epoch)] if framework == "ae_jax" else
            ["--train_images", str(128 * args.steps_per_epoch)])
  if getattr(args, "classifier", None):
    cmd += ["--samples_out", samples_path(framework, args, seed),
            "--sample_count", str(args.sample_count)]
  return cmd


def samples_path(framework: str, args: argparse.Namespace, seed: int) -> str:
  """Where a peer writes its prior samples for the FD (removed once scored)."""
  return os.path.join(args.out, f".{framework}-{family_of(args)}-seed{seed}.samples.npy")


@functools.cache
def _classifier_and_test_features(classifier_dir: str, test_images: int | None, idx_dir: str):
  """(the classifier's params, its features of the test images both peers score: the IDX
  file's first `test_images`), once per run of the driver."""
  from ae_jax.data import idx  # pylint: disable=import-outside-toplevel
  from ae_jax.evaluation import classifier  # pylint: disable=import-outside-toplevel
  params, _ = classifier.load(classifier_dir)
  return params, classifier.features(params, idx.load_images(idx_dir, "test")[:test_images])


def fd_of_samples(path: str, classifier_dir: str, test_images: int | None) -> float:
  """The FD (Fashion-MNIST classifier features; ae_jax.evaluation.frechet) of the samples
  at `path` to the test images, with one classifier for both peers."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from ae_jax.evaluation import classifier, frechet  # pylint: disable=import-outside-toplevel
  params, test_features = _classifier_and_test_features(
      classifier_dir, test_images, os.environ.get("FASHION_MNIST_IDX", common.IDX_DIR))
  return frechet.frechet_distance(classifier.features(params, np.load(path)), test_features)


def run_one(framework: str, args: argparse.Namespace, seed: int, log) -> dict | None:
  """Runs one peer process; returns its record (None if it failed: the log says why)."""
  cmd = command(framework, args, seed)
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  print(f"[{time.strftime('%H:%M:%S')}] {framework} {family_of(args)} seed {seed} ...",
        file=sys.stderr, flush=True)
  load = os.getloadavg()[0]
  record = bench_run.peer_record(cmd, framework, log, env=env, timeout=args.timeout)
  if record is None:
    return None
  record = {**record, "seed": seed, "load_before": load, "load_after": os.getloadavg()[0]}
  if getattr(args, "classifier", None):
    path = samples_path(framework, args, seed)
    record[FD] = fd_of_samples(path, args.classifier, args.test_images)
    os.remove(path)
  print(f"  {record['seconds_per_epoch']:.3f} s/epoch, {metric_text(family_of(args), record)}, "
        f"peak RSS {record['peak_rss_train_mb']:.0f} MiB", file=sys.stderr, flush=True)
  return record


def medians(records: list[dict]) -> dict:
  """The median of each of MEDIAN_KEYS that every record has (a family's records have no
  -ELBO, wae's, rae's and aae's no NLL; the VAE's no MSE)."""
  return {k: statistics.median(r[k] for r in records) for k in MEDIAN_KEYS
          if all(k in r for r in records)}


def metric_target(family: str, ours: dict, theirs: dict) -> tuple[str, bool, str]:
  """(what, met, the figures) of the judged metric: at most 1 % above pythae's."""
  name = METRICS[family]
  ratio = ours[name] / theirs[name]
  if name == "nll":
    return ("NLL at most 1 % above pythae's", ratio <= TARGETS["nll"],
            f"{ours['nll']:.2f} vs {theirs['nll']:.2f} nats: {100 * (ratio - 1):+.2f} %")
  return ("reconstruction MSE at most 1 % above pythae's", ratio <= TARGETS["mse"],
          f"{ours['mse']:.6f} vs {theirs['mse']:.6f} per pixel: {100 * (ratio - 1):+.2f} %")


def targets(ours: dict, theirs: dict, family: str = "vae") -> list[tuple[str, bool, str]]:
  """(what, met, the figures) for each of issue #22's (#31's for a family) targets, from
  the two medians."""
  epoch_ratio = ours["seconds_per_epoch"] / theirs["seconds_per_epoch"]
  rss_ratio = ours["peak_rss_train_mb"] / theirs["peak_rss_train_mb"]
  fd = []
  if FD in ours and FD in theirs:
    fd_ratio = ours[FD] / theirs[FD]
    fd = [("samples' FD at most 1 % above pythae's", fd_ratio <= TARGETS[FD],
           f"{ours[FD]:.2f} vs {theirs[FD]:.2f}: {100 * (fd_ratio - 1):+.2f} %")]
  return [*fd,
      metric_target(family, ours, theirs),
      ("epoch at most 0.5x pythae's", epoch_ratio <= TARGETS["seconds_per_epoch"],
       f"{ours['seconds_per_epoch']:.2f} vs {theirs['seconds_per_epoch']:.2f} s: "
       f"{epoch_ratio:.2f}x"),
      ("peak RSS (training) no higher than pythae's", rss_ratio <= TARGETS["peak_rss_train_mb"],
       f"{ours['peak_rss_train_mb']:.0f} vs {theirs['peak_rss_train_mb']:.0f} MiB: "
       f"{rss_ratio:.2f}x")]


def columns(family: str, fd: bool = False) -> list[tuple[str, Callable[[dict], str]]]:
  """The table's columns after `framework`: (heading, medians -> cell). The VAE's as in
  issue #22; a family's: the NLL where it has one, the MSE and PSNR, the epoch, the RSS."""
  nll = ("NLL (nats) ± s.e.", lambda m: f"{m['nll']:.2f} ± {m['nll_se']:.2f}")
  psnr = ("PSNR (dB)", lambda m: f"{m['psnr_db']:.2f}")
  speed_and_memory = [("s/epoch", lambda m: f"{m['seconds_per_epoch']:.2f}"),
                      ("peak RSS, training (MiB)", lambda m: f"{m['peak_rss_train_mb']:.0f}")]
  if family == "vae":
    return [nll, ("−ELBO (nats)", lambda m: f"{m['neg_elbo']:.2f}"), psnr, *speed_and_memory,
            ("peak RSS, with NLL (MiB)", lambda m: f"{m['peak_rss_mb']:.0f}")]
  return [*([nll] if METRICS[family] == "nll" else []),
          ("MSE (per pixel)", lambda m: f"{m['mse']:.6f}"), psnr,
          *([("FD, prior samples (classifier)", lambda m: f"{m[FD]:.2f}")] if fd else []),
          *speed_and_memory,
          ("peak RSS, at the end (MiB)", lambda m: f"{m['peak_rss_mb']:.0f}")]


def table(records: dict[str, list[dict]], family: str = "vae") -> str:
  """The markdown table of the medians and the targets."""
  med = {fw: medians(rs) for fw, rs in records.items() if rs}
  cols = columns(family, bool(med) and all(FD in m for m in med.values()))
  lines = ["| framework | " + " | ".join(heading for heading, _ in cols) + " |",
           "|---|" + "---|" * len(cols)]
  for fw, m in med.items():
    lines.append(f"| {fw} | " + " | ".join(cell(m) for _, cell in cols) + " |")
  if len(med) == 2:
    lines.append("")
    for what, met, figures in targets(med["ae_jax"], med["pythae"], family):
      lines.append(f"- ae_jax {what}: **{'met' if met else 'not met'}** ({figures})")
  return "\n".join(lines)


def read_records(paths: list[str]) -> tuple[str, dict[str, list[dict]]]:
  """(the family, each framework's records) of earlier runs' .jsonl files; one family only
  (a record's `model`: the peers write the family's name, the VAE's 'vae')."""
  records = {fw: [] for fw in FRAMEWORKS}
  for path in paths:
    with open(path) as f:
      for line in f:
        if line.strip():
          record = json.loads(line)
          records[record["framework"]].append(record)
  families = {r.get("model", "vae") for rs in records.values() for r in rs} or {"vae"}
  if len(families) > 1 or not families <= set(FAMILIES):
    raise SystemExit(f"--tabulate: records of {sorted(families)}; one of {FAMILIES} per table")
  return families.pop(), records


def tabulate(paths: list[str]) -> str:
  """The table of the medians over the records of earlier runs (their .jsonl files, all of
  one family), and one line per record: seed, the judged metric, first epoch (the compile,
  or a cache hit), s/epoch, peak RSS."""
  family, records = read_records(paths)
  lines = [f"Medians over {', '.join(f'{len(rs)} {fw}' for fw, rs in records.items())} "
           f"runs ({', '.join(os.path.basename(p) for p in paths)}):", "",
           table(records, family), ""]
  for fw, rs in records.items():
    lines += [f"- {fw} seed {r['seed']}: {metric_text(family, r)}, first epoch "
              f"{r['epoch_seconds'][0]:.1f} s, {r['seconds_per_epoch']:.2f} s/epoch (fastest "
              f"{min(r['epoch_seconds'][1:] or r['epoch_seconds']):.2f}), peak RSS "
              f"{r['peak_rss_train_mb']:.0f} / {r['peak_rss_mb']:.0f} MiB" for r in rs]
  return "\n".join(lines)


def machine() -> str:
  model = platform.processor() or platform.machine()
  try:  # the first processor's name, model number and whether it has AVX-512
    with open("/proc/cpuinfo") as f:
      info = dict(l.split(":", 1) for l in f.read().split("\n\n")[0].splitlines() if ":" in l)
    info = {k.strip(): v.strip() for k, v in info.items()}
    model = (f"{info.get('model name', model)} (model {info.get('model', '?')}"
             f"{', AVX-512' if 'avx512f' in info.get('flags', '').split() else ''})")
  except OSError:
    pass
  versions = []
  for name in PACKAGES:
    try:
      versions.append(f"{name} {importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      pass
  return f"{model}, {os.cpu_count()} cores, {platform.python_version()}; " + ", ".join(versions)


def check_same_test_images(records: list[dict], args: argparse.Namespace) -> str | None:  # pylint: disable=unused-argument
  """Both peers read the test split (its first --test_images) from the same IDX files, in
  their order: a note when their sums of uint8 pixels differ. (Until the IDX builder's
  version 1.1.0 tfds' copy was reordered, so only the whole split compared, and the first
  --test_images of the two peers were different images. The first run, 20261202-135728,
  compared float sums and warned of a float32 rounding.)"""
  sums = {r["test_u8_sum"] for r in records if "test_u8_sum" in r}
  if len(sums) > 1:
    return f"WARNING: the peers' test images differ (pixel sums {sorted(sums)})"
  return None


def scores_line(args: argparse.Namespace, every: list[dict]) -> str:
  """What the table's scores are, for the run's family."""
  images = every[0]["test_images"] if every else "?"
  if args.family == "vae":
    return (f"NLL: K = {args.num_samples} importance samples per image, {images} test "
            "images; −ELBO: one draw per image, KL in closed form; PSNR: "
            "decoder(posterior mean).")
  nll = (f"NLL: K = {args.num_samples} importance samples per image (pythae: its get_nll; "
         "ae_jax: ae_jax.evaluation.likelihood, the encoder's own prior); "
         if METRICS[args.family] == "nll" else "")
  code = "the deterministic code" if args.family in ("wae", "rae") else "the posterior mean"
  return (f"{nll}MSE (mean per pixel) and PSNR: decoder({code}), {images} test images. "
          f"pythae: peers/pythae_family.py --family {args.family} (Flax's initialization).")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--family", choices=FAMILIES, default="vae",
                      help="vae (configs/vae.py vs pythae's VAE, the default) or a research "
                           "family (configs/<family>.py vs pythae's; beta_tc: beta_tc_vae.py)")
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--rounds", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0, help="round r uses seed + r")
  parser.add_argument("--threads", type=int, default=None,
                      help="threads of both (1 or the default: each framework's own, the cores)")
  parser.add_argument("--num_samples", type=int, default=200,
                      help="K of the NLL (default 200; wae, rae, aae have none)")
  parser.add_argument("--steps_per_epoch", type=int, default=None, help="smoke runs")
  parser.add_argument("--test_images", type=int, default=None, help="smoke runs")
  parser.add_argument("--timeout", type=int, default=7200, help="seconds per process")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  parser.add_argument("--classifier", help="a folder of `python -m ae_jax.classifier`: both "
                      "peers write --sample_count prior samples, scored here by their FD "
                      "(a family's; the sample metric of issue #31)")
  parser.add_argument("--sample_count", type=int, default=common.SAMPLE_COUNT)
  parser.add_argument("--tabulate", nargs="+", metavar="JSONL",
                      help="run nothing: the table of the medians over these runs' records")
  args = parser.parse_args()
  if args.classifier and args.family == "vae":
    parser.error("--classifier scores a research family's samples (--family F); the VAE's "
                 "peers write none")
  if args.tabulate:
    print(tabulate(args.tabulate))
    return

  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  os.makedirs(args.out, exist_ok=True)
  base = os.path.join(args.out, f"{stamp}-{args.family}_vs_pythae")
  records = {fw: [] for fw in FRAMEWORKS}
  with open(base + ".log", "w") as log, open(base + ".jsonl", "w") as jsonl:
    for r in range(args.rounds):
      for fw in (FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]):
        record = run_one(fw, args, args.seed + r, log)
        if record:
          records[fw].append(record)
          jsonl.write(json.dumps(record) + "\n")
          jsonl.flush()
  every = [r for rs in records.values() for r in rs]
  loads = [r[k] for r in every for k in ("load_before", "load_after")]
  threads = ", ".join(sorted({f"{r['framework']} {r['threads']}" for r in every}))
  text = "\n".join(line for line in [
      f"# ae_jax vs pythae: {CONFIGS[args.family]}, {args.epochs} epochs, {args.rounds} "
      f"round(s), {stamp}",
      "",
      f"Machine: {machine()}. Threads: "
      f"{threads}. "
      "Processes one after the other, alternating who goes first; "
      f"1-min load average {min(loads, default=0):.1f}–{max(loads, default=0):.1f} "
      "(other work on the machine slows both).",
      scores_line(args, every),
      "",
      table(records, args.family),
      check_same_test_images(every, args),
      "",
      f"Command: python benchmarks/vae_vs_pythae.py {' '.join(sys.argv[1:])}".rstrip()]
                   if line is not None)
  with open(base + ".md", "w") as f:
    f.write(text + "\n")
  print(text)
  print(f"\nwrote {base}.md, .jsonl, .log", file=sys.stderr)
  if not all(records.values()):
    sys.exit(1)


if __name__ == "__main__":
  main()
