"""CompressAI's factorized-prior codec beside ae_jax's learned codec (issue #23): runs the
peer in its own venv, then measures what it decoded with ae_jax.core.quality.

  bash benchmarks/peers/compressai_env.sh                  # once: benchmarks/.venv-compressai
  python benchmarks/codec_peer.py                          # 5 lambdas x 10 epochs, one process each
  python benchmarks/codec_peer.py --read runs/compressai   # only (b)+(c) on existing outputs
  python benchmarks/codec_peer.py --time_sizes 32x48,64x96,128x192 --train_images 2560
                                                           # s/epoch per (N, M) on a slice
  python benchmarks/codec_peer.py --model mbt2018-mean --N 64 --M 96 --lambdas 0.025 \
      --speed configs/hyperprior.py --train_images 6400 --epochs 3 --rounds 2 --threads 2
                                                           # s/step beside ae_jax's config,
                                                           # alternating processes
  python benchmarks/codec_peer.py --levels 3 --N 64 --M 96 --lambdas 0.025 \
      --speed configs/codec_conv.py --train_images 6400 --epochs 3 --rounds 2 --threads 2

With --out FOLDER, a lambda whose FOLDER/lambda_<value>/result.json exists is not trained
again: the same command finishes an interrupted run.

(a) `peers/compressai_codec.py` runs under the venv's python, one lambda per process (so
each one's peak RSS is its own), writing --out/lambda_<value>/ (decoded uint8 images,
bytes per image, estimated bits per image, result.json). (b) The decoded images are
compared with the same Fashion-MNIST test images (uint8, from the IDX files) by
`ae_jax.core.quality.report`: per-image PSNR and SSIM, then the mean — the definitions every
codec in docs/compression.md is measured with. (c) One row per lambda goes to
benchmarks/results/<timestamp>-compressai.jsonl and .md, with the keys
ae_jax/compression/rate_distortion.py's rows use (`method`, `setting`, `bytes_per_image`, `psnr`,
`ssim`) so the lead's R-D plot takes them as they are.

Bytes are the ANS bitstream of each image's latent (CompressAI's `compress` strings): the
payload, like ae_jax's code bytes and JPEG's scan; the image size and the model are shared.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchmarks import run as bench_run  # noqa: E402  (machine, commit helpers)
from benchmarks.peers import common  # noqa: E402

VENV_PYTHON = os.path.join(HERE, ".venv-compressai", "bin", "python")
RUNNER = os.path.join(HERE, "peers", "compressai_codec.py")
LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.013)
METHOD = "CompressAI bmshj2018-factorized"  # --model mbt2018-mean: "CompressAI mbt2018-mean"
COLUMNS = ("setting", "bytes_per_image", "estimated_bytes_per_image", "overhead_bytes",
           "psnr", "ssim", "seconds_per_epoch", "cpu_seconds_per_epoch", "train_seconds",
           "encode_images_per_s", "decode_images_per_s", "peak_rss_mb")


def test_images_uint8(idx_dir: str = common.IDX_DIR) -> np.ndarray:
  """The 10k Fashion-MNIST test images as uint8 [N, 28, 28] (what the peer was given, x255)."""
  x = common.load_fashion_mnist(idx_dir)["x_test"][..., 0]
  return np.round(x * 255).astype(np.uint8)


# --------------------------------------------------------------------------- (a) the peer

def run_peer(args: argparse.Namespace, lmbda: float, n: int, m: int, out: str, log) -> dict:
  """One lambda in its own process under the venv's python; its JSON line, parsed."""
  cmd = [args.python, RUNNER, "--lambdas", repr(lmbda), "--out", out, "--epochs",
         str(args.epochs), "--N", str(n), "--M", str(m), "--threads", str(args.threads),
         "--seed", str(args.seed), "--idx_dir", args.idx_dir, "--model", args.model]
  if args.levels:
    cmd += ["--levels", str(args.levels)]
  for flag in ("train_images", "test_images"):
    if getattr(args, flag):
      cmd += [f"--{flag}", str(getattr(args, flag))]
  print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
  proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
  if proc.returncode != 0:
    raise SystemExit(f"the CompressAI peer failed (exit {proc.returncode}) for lambda "
                     f"{lmbda}: see {log.name}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- (b) quality

def read_outputs(folder: str, images_u8: np.ndarray) -> list[dict]:
  """One row per lambda_*/ in `folder`: the peer's record plus PSNR/SSIM of its decoded
  images against the first len(decoded) of `images_u8`, sorted by bytes."""
  from ae_jax.core import quality  # pylint: disable=import-outside-toplevel  (jax: only here)
  rows = []
  for path in sorted(glob.glob(os.path.join(folder, "lambda_*", "result.json"))):
    lam_dir = os.path.dirname(path)
    with open(path) as f:
      record = json.load(f)
    decoded = np.load(os.path.join(lam_dir, "decoded.npy"))
    nbytes = np.load(os.path.join(lam_dir, "bytes.npy"))
    bits = np.load(os.path.join(lam_dir, "estimated_bits.npy"))
    if not len(decoded) == len(nbytes) == len(bits) <= len(images_u8):
      raise ValueError(f"{lam_dir}: {len(decoded)} decoded images, {len(nbytes)} byte counts "
                       f"and {len(bits)} estimates for {len(images_u8)} test images")
    originals = images_u8[:len(decoded)]
    q = quality.report(decoded[..., None], originals[..., None])
    estimated = float(bits.mean() / 8)
    actual = float(nbytes.mean())
    rows.append({
        "method": f"CompressAI {record.get('model', 'bmshj2018-factorized')}", "setting": f"λ={record['lambda']:g}, N={record['N']}, M={record['M']}",
        "lambda": record["lambda"], "N": record["N"], "M": record["M"],
        "bytes_per_image": actual, "estimated_bytes_per_image": estimated,
        "overhead_bytes": actual - estimated, "min_bytes": int(nbytes.min()),
        "max_bytes": int(nbytes.max()), "images": len(decoded),
        **{k: q[k] for k in ("mse", "psnr", "ssim")},
        **{k: record[k] for k in ("epochs", "seconds_per_epoch", "cpu_seconds_per_epoch",
                                  "train_seconds", "epoch_seconds", "encode_images_per_s",
                                  "decode_images_per_s", "peak_rss_mb", "num_params",
                                  "torch_threads", "torch_version", "compressai_version",
                                  "train_images", "final_train")},
    })
  return sorted(rows, key=lambda r: r["bytes_per_image"])


# --------------------------------------------------------------------------- (c) results

def _fmt(value) -> str:
  if isinstance(value, float):
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
  return str(value)


def markdown(rows: list[dict], header: list[str], columns=COLUMNS) -> str:
  lines = header + ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def machine_line(load_before, load_after) -> str:
  return (f"Machine: {bench_run._cpu_model()}, {os.cpu_count()} CPUs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}. git {bench_run._git_commit()}.")


def write_results(rows: list[dict], stamp: str, header: list[str], results_dir: str,
                  name: str = "compressai", columns=COLUMNS) -> str:
  """<stamp>-<name>.jsonl (every field) and .md (the table); returns the .md path."""
  os.makedirs(results_dir, exist_ok=True)
  base = os.path.join(results_dir, f"{stamp}-{name}")
  with open(base + ".jsonl", "w") as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")
  with open(base + ".md", "w") as f:
    f.write(markdown(rows, header, columns))
  return base + ".md"


# --------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lambdas", default=",".join(map(str, LAMBDAS)))
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--N", type=int, default=32)
  parser.add_argument("--M", type=int, default=48)
  parser.add_argument("--threads", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--train_images", type=int, default=None)
  parser.add_argument("--test_images", type=int, default=None)
  parser.add_argument("--out", default=None,
                      help="the peer's output folder (default runs/compressai-<timestamp>)")
  parser.add_argument("--read", default=None, metavar="FOLDER",
                      help="skip training: read an existing output folder")
  parser.add_argument("--time_sizes", default=None, metavar="NxM,...",
                      help="instead: s/epoch per (N, M) at the first lambda (use a slice)")
  parser.add_argument("--model", default="bmshj2018-factorized",
                      choices=("bmshj2018-factorized", "mbt2018-mean"),
                      help="the peer's model (peers/compressai_codec.py)")
  parser.add_argument("--levels", type=int, default=None,
                      help="the peer's stride-2 levels (peers/compressai_codec.py's default)")
  parser.add_argument("--speed", default=None, metavar="CONFIG",
                      help="instead: seconds per step of the peer and of ae_jax's CONFIG at "
                           "the first lambda, --rounds alternating processes each")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--data_dir", default=None,
                      help="--speed: ae_jax's tfds data_dir (default: the config's)")
  parser.add_argument("--python", default=VENV_PYTHON, help="the venv's python")
  parser.add_argument("--idx_dir", default=common.IDX_DIR, help="Fashion-MNIST's IDX files")
  parser.add_argument("--results_dir", default=os.path.join(HERE, "results"))
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  command = "python benchmarks/codec_peer.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
  if not args.read and not os.path.exists(args.python):
    raise SystemExit(f"no CompressAI venv at {args.python}: run "
                     "`bash benchmarks/peers/compressai_env.sh` first (or pass --python)")
  out = args.read or args.out or os.path.join("runs", f"compressai-{stamp}")
  os.makedirs(out, exist_ok=True)
  load_before = os.getloadavg()
  with open(os.path.join(out, "peer.log"), "a") as log:
    if args.time_sizes:
      return time_sizes(args, out, log, stamp, command, load_before)
    if args.speed:
      return speed(args, out, log, stamp, command, load_before)
    if not args.read:
      for lmbda in (float(v) for v in args.lambdas.split(",")):
        done = os.path.join(out, f"lambda_{lmbda:g}", "result.json")
        if os.path.exists(done):  # an interrupted run goes on where it stopped
          print(f"lambda {lmbda:g}: kept {done}", file=sys.stderr)
          continue
        run_peer(args, lmbda, args.N, args.M, out, log)
  rows = read_outputs(out, test_images_uint8(args.idx_dir))
  r0 = rows[0]
  header = [
      f"# {r0['method']} (CompressAI {r0['compressai_version']}) on Fashion-MNIST — {stamp}",
      "", f"Command: `{command}` (outputs in `{out}`).",
      ("MeanScaleHyperprior" if "mbt2018" in r0["method"] else "FactorizedPrior")
      + f"(N={r0['N']}, M={r0['M']}), 1-channel, images zero-padded to 32×32 and "
      f"cropped back; {r0['num_params']:,} params; {r0['epochs']} epochs of "
      f"{r0['train_images']:,} train images, batch 128, Adam 1e-3 + aux Adam 1e-3; "
      f"torch {r0['torch_version']}, {r0['torch_threads']} thread(s). Evaluated on "
      f"{r0['images']:,} test images: bytes = the image's ANS bitstream (CompressAI `compress`), estimated = −log2 of its "
      "likelihoods / 8; PSNR, SSIM by ae_jax.core.quality (per image, then the mean). "
      "s/epoch: median wall time (evaluation excluded); cpu s/epoch: the process's CPU time.",
      machine_line(load_before, os.getloadavg())]
  path = write_results(rows, stamp, header, args.results_dir)
  print(open(path).read())


def run_ae_jax(args, config: str, lmbda: float, workdir: str, log) -> dict:
  """ae_jax's `config` at `lmbda` on the peer's slice (--train_images / 128 steps an epoch,
  --epochs), as launch.py trains it, in its own process; its metrics rows and peak RSS.
  One thread: XLA's Eigen pool off, the process on one core (the peer: torch's one thread)."""
  steps = (args.train_images or 60000) // common.BATCH_SIZE
  cmd = [sys.executable, os.path.join(os.path.dirname(HERE), "launch.py"), "--config",
         f"{config}:{lmbda!r}", "--workdir", workdir, f"--config.num_epochs={args.epochs}",
         f"--config.steps_per_epoch={steps}", "--config.eval_examples=256",
         "--config.progress_bar=False", f"--config.seed={args.seed}",
         f"--config.idx_dir={args.idx_dir}", "--compilation_cache_dir="]
  if args.data_dir:
    cmd.append(f"--config.data_dir={args.data_dir}")
  env = dict(os.environ)
  if args.threads == 1:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    cmd = ["taskset", "-c", "0"] + cmd
  rss_file = workdir + ".peak_rss_kb"
  if os.path.exists("/usr/bin/time"):  # GNU time: this process's own peak, not the peer's
    cmd = ["/usr/bin/time", "-o", rss_file, "-f", "%M"] + cmd
  print(f"[{time.strftime('%H:%M:%S')}] {' '.join(cmd)}", file=sys.stderr, flush=True)
  proc = subprocess.run(cmd, stdout=log, stderr=log, env=env)
  if proc.returncode != 0:
    raise SystemExit(f"ae_jax's {config} failed (exit {proc.returncode}): see {log.name}")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  peak = None
  if os.path.exists(rss_file):
    with open(rss_file) as f:
      peak = int(f.read().split()[-1]) / 1024
  return {"rows": rows, "steps": steps, "peak_rss_mb": peak}


def speed(args, out, log, stamp, command, load_before) -> None:
  """Seconds per train step of the peer and of ae_jax's --speed config, same slice, same
  thread count, --rounds times each, alternating; medians over every epoch after the first
  (ae_jax's first compiles; the peer's is dropped alike)."""
  import statistics  # pylint: disable=import-outside-toplevel
  lmbda = float(args.lambdas.split(",")[0])
  if args.epochs < 2:
    raise SystemExit("--speed needs --epochs 2 or more: the first epoch of each is dropped")
  steps = (args.train_images or 60000) // common.BATCH_SIZE
  per_step = {"ae_jax": [], "peer": []}
  rss = {"ae_jax": [], "peer": []}
  for r in range(args.rounds):
    a = run_ae_jax(args, args.speed, lmbda, os.path.join(out, f"ae_jax_{r}"), log)
    per_step["ae_jax"] += [row["seconds"] / steps for row in a["rows"][1:]]
    rss["ae_jax"].append(a["peak_rss_mb"])
    p = run_peer(args, lmbda, args.N, args.M, os.path.join(out, f"peer_{r}"), log)
    per_step["peer"] += [sec / steps for sec in p["epoch_seconds"][1:]]
    rss["peer"].append(p["peak_rss_mb"])
  med = {k: statistics.median(v) for k, v in per_step.items()}
  rows = [{"framework": k, "ms_per_step": 1000 * med[k], "fastest_ms_per_step":
           1000 * min(per_step[k]), "s_per_468_step_epoch": med[k] * 468,
           "ratio_to_peer": med[k] / med["peer"], "epochs_timed": len(per_step[k]),
           "peak_rss_mb": max((x for x in rss[k] if x), default=None)}
          for k in ("ae_jax", "peer")]
  header = [f"# {args.speed} beside CompressAI {args.model} — {stamp}", "",
            f"Command: `{command}`. λ={lmbda:g}, N={args.N}, M={args.M}, batch 128, "
            f"{steps} steps an epoch, {args.epochs} epochs per process (the first dropped), "
            f"{args.rounds} rounds alternating ae_jax / peer, {args.threads} thread(s) each. "
            "Wall seconds of training (evaluation excluded) per step: medians and fastest.",
            machine_line(load_before, os.getloadavg())]
  columns = ("framework", "ms_per_step", "fastest_ms_per_step", "s_per_468_step_epoch",
             "ratio_to_peer", "epochs_timed", "peak_rss_mb")
  path = write_results(rows, stamp, header, args.results_dir, "codec-speed", columns)
  print(open(path).read())


def time_sizes(args, out, log, stamp, command, load_before) -> None:
  """s/epoch of each (N, M) in --time_sizes at the first lambda, one process each."""
  lmbda = float(args.lambdas.split(",")[0])
  rows = []
  for size in args.time_sizes.split(","):
    n, m = (int(v) for v in size.lower().split("x"))
    r = run_peer(args, lmbda, n, m, os.path.join(out, f"size_{n}x{m}"), log)
    steps = r["steps_per_epoch"]
    rows.append({"N": n, "M": m, "num_params": r["num_params"], "steps_per_epoch": steps,
                 "seconds_per_epoch": r["seconds_per_epoch"],
                 "cpu_seconds_per_epoch": r["cpu_seconds_per_epoch"],
                 "cpu_ms_per_step": 1000 * r["cpu_seconds_per_epoch"] / steps,
                 "cpu_s_per_full_epoch": r["cpu_seconds_per_epoch"] / steps * (60000 // 128),
                 "cpu_hours_5x10_epochs": r["cpu_seconds_per_epoch"] / steps * 468 * 50 / 3600,
                 "epoch_seconds": r["epoch_seconds"], "epoch_cpu_seconds": r["epoch_cpu_seconds"]})
  header = [f"# CompressAI FactorizedPrior sizes — {stamp}", "",
            f"Command: `{command}`. λ={lmbda:g}, batch 128, {args.threads} thread(s); medians "
            "over the epochs; the full-epoch and 5 λ × 10 epochs figures scale the CPU time "
            "per step to 468 steps.", machine_line(load_before, os.getloadavg())]
  columns = ("N", "M", "num_params", "steps_per_epoch", "seconds_per_epoch",
             "cpu_seconds_per_epoch", "cpu_ms_per_step", "cpu_s_per_full_epoch",
             "cpu_hours_5x10_epochs")
  path = write_results(rows, stamp, header, args.results_dir, "compressai-sizes", columns)
  print(open(path).read())


if __name__ == "__main__":
  main()
