"""benchmarks/codec_peer.py's reading of the CompressAI peer's outputs and its quality
numbers. The peer itself needs its own venv (compressai needs numpy < 2), so the outputs
here are written by the test in the peer's layout: real files, known pixels and bytes; the
last test runs the peer for real where that venv exists."""
import json
import os
import sys

import numpy as np
import pytest

from benchmarks import codec_peer
from tests.conftest import write_idx_folder


def _psnr(decoded_u8, originals_u8):
  """Per-image PSNR (dB) with numpy, then the mean: the definition the driver must use."""
  diff = decoded_u8.astype(np.float64) / 255 - originals_u8.astype(np.float64) / 255
  mse = (diff ** 2).reshape(len(diff), -1).mean(1)
  return float(np.mean(10 * np.log10(1 / mse)))


def _write_peer_lambda(folder, lmbda, decoded, nbytes, bits, **record):
  """One lambda_<value>/ folder as peers/compressai_codec.py writes it."""
  out = os.path.join(folder, f"lambda_{lmbda:g}")
  os.makedirs(out)
  np.save(os.path.join(out, "decoded.npy"), decoded)
  np.save(os.path.join(out, "bytes.npy"), np.asarray(nbytes, np.int32))
  np.save(os.path.join(out, "estimated_bits.npy"), np.asarray(bits, np.float64))
  base = {"lambda": lmbda, "N": 32, "M": 48, "epochs": 2, "seconds_per_epoch": 3.0,
          "cpu_seconds_per_epoch": 2.5, "train_seconds": 6.0, "epoch_seconds": [3.0, 3.0],
          "encode_images_per_s": 1000.0, "decode_images_per_s": 500.0, "peak_rss_mb": 900.0,
          "num_params": 190305, "torch_threads": 1, "torch_version": "2.13.0",
          "compressai_version": "1.2.8", "train_images": 512, "final_train": None}
  with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({**base, **record}, f)


def _noisy(images, amplitude, seed):
  """Uniform integer noise up to `amplitude` for the last image, less for the others (so
  the mean of per-image PSNRs differs from the PSNR of the mean MSE)."""
  rng = np.random.default_rng(seed)
  scale = np.linspace(0.4, 1, len(images))[:, None, None]
  noise = np.round(rng.uniform(-1, 1, images.shape) * scale * amplitude)
  return np.clip(images.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def test_rows_hold_the_peers_bytes_and_psnr_computed_against_the_test_images(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (40, 28, 28)).astype(np.uint8)
  coarse, fine = _noisy(images[:16], 40, 1), _noisy(images[:16], 6, 2)
  # Written in the order of lambda, not of bytes: rows come back sorted by bytes.
  _write_peer_lambda(tmp_path, 0.013, fine, np.arange(16) + 100, np.full(16, 8 * 95.5))
  _write_peer_lambda(tmp_path, 0.0009, coarse, np.full(16, 20), np.full(16, 8 * 17.0))
  rows = codec_peer.read_outputs(str(tmp_path), images)
  assert [r["lambda"] for r in rows] == [0.0009, 0.013]
  low, high = rows
  assert low["bytes_per_image"] == 20 and low["estimated_bytes_per_image"] == 17
  assert low["overhead_bytes"] == 3
  assert high["bytes_per_image"] == 107.5 and (high["min_bytes"], high["max_bytes"]) == (100, 115)
  # Against the first 16 originals, not all 40 (the peer ran --test_images 16).
  assert low["psnr"] == pytest.approx(_psnr(coarse, images[:16]), abs=1e-4)
  assert high["psnr"] == pytest.approx(_psnr(fine, images[:16]), abs=1e-4)
  assert high["psnr"] > low["psnr"] + 15 and 1 > high["ssim"] > low["ssim"] > 0
  pooled = 10 * np.log10(255 ** 2 / np.mean((coarse.astype(float) - images[:16]) ** 2))
  assert abs(low["psnr"] - pooled) > 0.5  # per image, then the mean
  assert low["images"] == 16 and low["method"] == codec_peer.METHOD
  assert low["setting"] == "λ=0.0009, N=32, M=48"


def test_identical_pictures_give_ssim_one_and_the_psnr_floor(tmp_path):
  images = np.random.default_rng(3).integers(0, 256, (8, 28, 28)).astype(np.uint8)
  _write_peer_lambda(tmp_path, 0.0035, images.copy(), np.full(8, 50), np.full(8, 400.0))
  (row,) = codec_peer.read_outputs(str(tmp_path), images)
  assert row["ssim"] == pytest.approx(1.0, abs=1e-6) and row["psnr"] == pytest.approx(100.0)


def test_more_decoded_images_than_originals_is_refused(tmp_path):
  images = np.zeros((4, 28, 28), np.uint8)
  _write_peer_lambda(tmp_path, 0.0035, np.zeros((5, 28, 28), np.uint8), [9] * 5, [64.0] * 5)
  with pytest.raises(ValueError, match="5 decoded images, 5 byte counts and 5 estimates for "
                                       "4 test images"):
    codec_peer.read_outputs(str(tmp_path), images)


def test_read_writes_the_rd_rows_for_the_plot_from_the_idx_test_split(tmp_path):
  """main --read: the test images come from the IDX files, the rows go to
  <stamp>-compressai.jsonl with the keys ae_jax/compression/rate_distortion.py's rows use."""
  idx = write_idx_folder(str(tmp_path / "idx"), n_train=8, n_test=12)
  originals = codec_peer.test_images_uint8(idx)
  assert originals.shape == (12, 28, 28) and originals.dtype == np.uint8 and originals.max() > 150
  peer = tmp_path / "peer"
  _write_peer_lambda(peer, 0.0018, _noisy(originals, 10, 4), np.full(12, 33), np.full(12, 248.0))
  results = tmp_path / "results"
  codec_peer.main(["--read", str(peer), "--results_dir", str(results), "--idx_dir", idx])
  (jsonl,) = results.glob("*-compressai.jsonl")
  (row,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert {"method", "setting", "bytes_per_image", "psnr", "ssim"} <= set(row)
  assert row["bytes_per_image"] == 33 and row["estimated_bytes_per_image"] == 31
  assert row["psnr"] == pytest.approx(_psnr(_noisy(originals, 10, 4), originals), abs=1e-4)
  table = jsonl.with_suffix(".md").read_text()
  assert "| λ=0.0018, N=32, M=48 | 33.00 | 31.00 | 2.00 |" in table
  assert "on 12 test images" in table and "epochs of 512 train images" in table


def test_no_venv_is_one_line_naming_the_script(tmp_path):
  with pytest.raises(SystemExit, match="run `bash benchmarks/peers/compressai_env.sh` first"):
    codec_peer.main(["--python", str(tmp_path / "none"), "--out", str(tmp_path / "o")])


def test_a_finished_lambda_is_not_trained_again(tmp_path):
  """An interrupted 5-lambda run goes on with the same command: a lambda with its
  result.json is kept (running the peer here would fail: no compressai in this python)."""
  idx = write_idx_folder(str(tmp_path / "idx"), n_train=8, n_test=6)
  originals = codec_peer.test_images_uint8(idx)
  peer = tmp_path / "peer"
  _write_peer_lambda(peer, 0.0067, _noisy(originals, 8, 5), np.full(6, 70), np.full(6, 520.0))
  results = tmp_path / "results"
  codec_peer.main(["--lambdas", "0.0067", "--out", str(peer), "--python", sys.executable,
                   "--results_dir", str(results), "--idx_dir", idx])
  (jsonl,) = results.glob("*-compressai.jsonl")
  assert json.loads(jsonl.read_text())["bytes_per_image"] == 70


def test_speed_alternates_ae_jax_and_the_peer_and_tabulates_seconds_per_step(tmp_path,
                                                                            tiny_data):
  """--speed: ae_jax's config trained by launch.py on the peer's slice, the peer (a stub
  that prints the peer's record: its venv is not here) the same number of times,
  alternating; medians over the epochs after the first, per step."""
  calls = tmp_path / "calls.txt"
  stub = tmp_path / "peer_python"
  stub.write_text(f"#!{sys.executable}\nimport json, sys\n"
                  f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                  "print(json.dumps({'epoch_seconds': [9.0, 0.4, 0.6], 'peak_rss_mb': 900.0}))\n")
  stub.chmod(0o755)
  results = tmp_path / "results"
  codec_peer.main(["--speed", "configs/codec.py", "--lambdas", "0.025", "--model",
                   "mbt2018-mean", "--train_images", "256", "--epochs", "3", "--rounds", "2",
                   "--python", str(stub), "--out", str(tmp_path / "out"), "--results_dir",
                   str(results), "--idx_dir", tiny_data[0], "--data_dir", tiny_data[1]])
  peer_calls = calls.read_text().splitlines()
  assert len(peer_calls) == 2 and all("--model mbt2018-mean" in c for c in peer_calls)
  (jsonl,) = results.glob("*-codec-speed.jsonl")
  ae, peer = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert peer["framework"] == "peer" and peer["ms_per_step"] == pytest.approx(250.0)
  assert peer["fastest_ms_per_step"] == pytest.approx(200.0) and peer["epochs_timed"] == 4
  rows = [json.loads(l) for r in (0, 1)
          for l in open(tmp_path / "out" / f"ae_jax_{r}" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [2, 4, 6] * 2  # 256 images: 2 steps an epoch
  timed = sorted(r["seconds"] / 2 for r in rows if r["epoch"] > 1)
  assert ae["ms_per_step"] == pytest.approx(1000 * (timed[1] + timed[2]) / 2)
  assert ae["ratio_to_peer"] == pytest.approx(ae["ms_per_step"] / 250.0)


def test_the_real_peer_trains_and_codes_in_its_own_venv(tmp_path):
  """peers/compressai_codec.py for real, as codec_peer.py runs it: one λ, 2 steps of the
  tiny IDX dataset, 8 test images coded and decoded, then measured here. Needs CompressAI's
  venv (`bash benchmarks/peers/compressai_env.sh`); skips where there is none."""
  if not os.path.exists(codec_peer.VENV_PYTHON):
    pytest.skip(f"no CompressAI venv at {codec_peer.VENV_PYTHON}: "
                "bash benchmarks/peers/compressai_env.sh")
  idx = write_idx_folder(str(tmp_path / "idx"), n_train=256, n_test=8)
  results = tmp_path / "results"
  codec_peer.main(["--lambdas", "0.013", "--epochs", "1", "--train_images", "256",
                   "--out", str(tmp_path / "peer"), "--results_dir", str(results),
                   "--idx_dir", idx])
  (jsonl,) = results.glob("*-compressai.jsonl")
  (row,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert row["setting"] == "λ=0.013, N=32, M=48" and row["images"] == 8
  assert row["bytes_per_image"] > 0 and row["estimated_bytes_per_image"] > 0
  assert row["psnr"] > 0 and 0 < row["ssim"] <= 1
