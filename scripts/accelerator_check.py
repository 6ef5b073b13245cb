"""The prepared accelerator check: images/s per model, and a short denoise run that must
restore on the CPU. Meant for one short session on a GPU/TPU machine; CI never runs it.

  python scripts/accelerator_check.py [--out accel.md] [--steps 300] [--batch_size 1024]

For each model (dense, conv) it trains on the device pipeline (the dataset resident on
the accelerator, batches gathered and noised inside jit) and reports images/s over the
epochs after the first (which compiles). Then it trains configs/denoise.py for --steps
steps, and restores the encoder and decoder from that run on the CPU in a subprocess
(JAX_PLATFORMS=cpu), checking the codes match the accelerator's within 1e-4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from ae_jax import checkpoint, train  # pylint: disable=wrong-import-position
from configs import conv, dense, denoise  # pylint: disable=wrong-import-position

CPU_RESTORE = """
import sys, numpy as np, jax
sys.path.insert(0, {repo!r})
from ae_jax import checkpoint
x = np.load({x!r})
enc, v = checkpoint.restore_encoder({workdir!r})
dec, dv = checkpoint.restore_decoder({workdir!r})
codes = np.asarray(enc.apply(v, x))
np.save({out!r}, codes)
print(jax.default_backend(), np.asarray(jax.nn.sigmoid(dec.apply(dv, codes))).shape)
"""


def throughput(module, batch_size: int, steps: int, epochs: int, data_dir: str) -> dict:
  config = module.get_config()
  config.update(batch_size=batch_size, steps_per_epoch=steps, num_epochs=epochs,
                input_pipeline="device", progress_bar=False, data_dir=data_dir,
                eval_batch_size=1000 - 1000 % jax.device_count())
  with tempfile.TemporaryDirectory() as workdir:
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f]
  later = rows[1:] or rows
  return {"images_per_sec": float(np.median([r["images_per_sec"] for r in later])),
          "val_loss": rows[-1]["val_loss"]}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="accelerator_check.md")
  parser.add_argument("--steps", type=int, default=300, help="denoise run length")
  parser.add_argument("--batch_size", type=int, default=1024)
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--steps_per_epoch", type=int, default=None)
  parser.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  args = parser.parse_args()
  devices = jax.devices()
  lines = [f"devices: {len(devices)} x {devices[0].device_kind} ({jax.default_backend()})",
           "", "| model | batch | images/s (median, after compile) | final val loss |",
           "|---|---|---|---|"]
  for name, module in (("dense", dense), ("conv", conv), ("denoise", denoise)):
    r = throughput(module, args.batch_size, args.steps_per_epoch, args.epochs, args.data_dir)
    lines.append(f"| {name} | {args.batch_size} | {r['images_per_sec']:,.0f} | "
                 f"{r['val_loss']:.4f} |")
    print(lines[-1], flush=True)

  with tempfile.TemporaryDirectory() as tmp:
    workdir = os.path.join(tmp, "denoise")
    config = denoise.get_config()
    config.update(steps_per_epoch=args.steps, num_epochs=1, progress_bar=False,
                  data_dir=args.data_dir)
    train.train_and_evaluate(config, workdir)
    x = np.random.default_rng(0).uniform(size=(8, 28, 28, 1)).astype(np.float32)
    enc, v = checkpoint.restore_encoder(workdir)
    here = np.asarray(enc.apply(v, x))
    np.save(os.path.join(tmp, "x.npy"), x)
    out = os.path.join(tmp, "codes.npy")
    script = CPU_RESTORE.format(repo=REPO, x=os.path.join(tmp, "x.npy"), workdir=workdir,
                                out=out)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True)
    ok = done.returncode == 0 and np.allclose(np.load(out), here, atol=1e-4)
    lines += ["", f"denoise, {args.steps} steps on {jax.default_backend()}: checkpoint restored "
              f"on CPU ({done.stdout.strip() or done.stderr[-300:]}): "
              f"{'codes match' if ok else 'FAILED'}"]
  with open(args.out, "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  main()
