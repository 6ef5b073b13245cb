"""The measuring commands on the tiny dataset: sweep, rate-distortion, out of domain, latent."""
import io
import json
import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from ae_jax.compression import compress, out_of_domain, rate_distortion, sweep
from ae_jax.data import pipeline as data
from ae_jax.evaluation import latent
from ae_jax.training import runs


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_data):
  """A sweep over K = 2, 4 (one epoch of 2 steps each) on the tiny dataset."""
  idx_dir, data_dir = tiny_data
  out = str(tmp_path_factory.mktemp("sweep"))
  overrides = {"data_dir": data_dir, "idx_dir": idx_dir, "batch_size": 32,
               "steps_per_epoch": 2, "eval_batch_size": 64}
  rows = sweep.run(out, ks=(2, 4), epochs=1, overrides=overrides, jpeg_qualities=(10, 50))
  return out, rows


def test_sweep_table_and_plot(swept):
  out, rows = swept
  assert [r["K"] for r in rows] == [2, 4]
  for r in rows:
    k = r["K"]
    assert (r["bytes_float32"], r["bytes_float16"], r["bytes_uint8"]) == (4 * k, 2 * k, k)
    assert r["ratio_uint8"] == pytest.approx(784 / k)
    metrics = [json.loads(l) for l in open(os.path.join(out, "runs", f"K{k}", "metrics.jsonl"))]
    assert r["val_bce"] == metrics[-1]["val_loss"]
    # Measured on uint8 outputs of the whole tiny test split, as training measured on floats.
    assert r["psnr_float32"] == pytest.approx(metrics[-1]["val_psnr"], abs=0.05)
    assert 0 < r["ssim_uint8"] <= 1
  for name in ("sweep.md", "sweep.csv", "sweep.json", "sweep_rd.json", "sweep.png"):
    assert os.path.getsize(os.path.join(out, name)) > 100, name
  assert open(os.path.join(out, "sweep.md")).readline().startswith("| K | bytes_float32")
  assert Image.open(os.path.join(out, "sweep.png")).size[0] > 400


def test_sweep_refuses_unknown_override(tmp_path, capsys):
  assert sweep.main(["--out", str(tmp_path), "--ks", "2", "--set", "latnet_dim=3"]) == 2
  assert "unknown config field 'latnet_dim'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--set", "encoder.latent_dim=3"], "--set encoder.latent_dim=... is the sweep's own: give "
                                        "the code sizes with --ks"),
    (["--set", "num_epochs=3"], "--set num_epochs=... is the sweep's own: use --epochs"),
    (["--set", "encoder.name=conv"], "--set encoder.name=... is the sweep's own: the sweep "
                                     "trains the dense"),
    (["--jpeg_qualities", "0,500"], "--jpeg_qualities must lie in 1..95"),
    (["--set", "batch_size=0"], "bad config value batch_size=0: it must be a positive integer "
                                "(--set batch_size=...)"),
    (["--set", "batch_size=abc"], "bad value batch_size='abc': it must be of type int, as in "
                                  "configs/default.py (--set batch_size=...)"),
    (["--set", "data_dir=5"], "bad value data_dir=5: it must be of type str"),  # None default
    (["--set", "noise=0.1"], "--set noise=... names a group: set its fields, e.g. --set "
                             "noise.loc=...")])
def test_sweep_refuses_what_would_mislabel_its_tables(tmp_path, capsys, args, message):
  assert sweep.main(["--out", str(tmp_path / "out"), "--ks", "2", *args]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and message in err, err
  assert not (tmp_path / "out").exists()  # refused before any work


def test_sweep_messages_name_its_own_flags():
  # The message a rerun with fewer epochs gets from the workdir (tests/test_resume.py).
  message = ("--workdir out/runs/K2 has trained to step 4, past the 1 epoch(s) of "
             "--config.num_epochs=1 (2 steps each): set --config.num_epochs=2 or more, or "
             "--restart to start over")
  assert sweep._in_sweep_terms(message) == (  # pylint: disable=protected-access
      "out/runs/K2 has trained to step 4, past the 1 epoch(s) of --epochs 1 (2 "
      "steps each): set --epochs 2 or more, or --restart to start over")
  assert sweep._in_sweep_terms("lower --config.learning_rate and rerun; or set "  # pylint: disable=protected-access
                               "--config.noise.scale=...") == (
      "lower --set learning_rate=... and rerun; or --set noise.scale=...")


def test_rate_distortion_rows(swept, tmp_path):
  out, _ = swept
  workdir = os.path.join(out, "runs", "K4")
  rows = rate_distortion.run(workdir, str(tmp_path), jpeg_qualities=(5, 50, 90))
  by = {(r["method"], r["setting"]): r for r in rows}
  assert by[("autoencoder uint8", "dense K=4")]["bytes_per_image"] == 4
  png = by[("PNG", "lossless")]
  assert math.isinf(png["psnr"]) and png["ssim"] == pytest.approx(1.0) and png["mse"] == 0
  files = [by[("JPEG file", f"quality {q}")] for q in (5, 50, 90)]
  shared = [by[("JPEG, tables shared", f"quality {q}")] for q in (5, 50, 90)]
  scan = [by[("JPEG, scan only", f"quality {q}")] for q in (5, 50, 90)]
  assert [r["psnr"] for r in files] == sorted(r["psnr"] for r in files)
  assert [r["bytes_per_image"] for r in files] == sorted(r["bytes_per_image"] for r in files)
  for c, s, f in zip(scan, shared, files):
    assert c["bytes_per_image"] < s["bytes_per_image"] < f["bytes_per_image"]
    assert c["psnr"] == s["psnr"] == f["psnr"]  # the same pictures, counted three ways
  saved = json.load(open(tmp_path / "rd.json"))
  assert [r for r in saved if r["method"] == "PNG"][0]["psnr"] is None  # inf is not JSON
  assert "| PNG | lossless |" in open(tmp_path / "rd.md").read()
  # The report names the run and checkpoint it measured, and how far that run had trained.
  assert open(tmp_path / "rd.md").readline().strip() == (
      f"128 fashion_mnist test images; autoencoder: {workdir}, checkpoint step 2 "
      "(1 of 1 epochs)")


def test_run_summary_says_when_a_run_is_unfinished(swept, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(os.path.join(swept[0], "runs", "K4"), workdir)
  cfg = json.loads((workdir / "config.json").read_text())
  cfg["num_epochs"] = 3  # as if stopped after its first epoch of three
  (workdir / "config.json").write_text(json.dumps(cfg))
  with open(workdir / "metrics.jsonl", "a") as f:
    f.write('{"note": "not a row"}\n')
  assert runs.run_summary(str(workdir), step=2) == (
      f"{workdir}, checkpoint step 2 (1 of 3 epochs; unfinished)")
  assert runs.run_summary(str(workdir), step=1) == (
      f"{workdir}, checkpoint step 1 (0 of 3 epochs; unfinished)")
  os.remove(workdir / "metrics.jsonl")  # a copy with only what decode needs
  assert runs.run_summary(str(workdir), step=2) == (
      f"{workdir}, checkpoint step 2 (of 3 epochs; how many were trained is unknown: no "
      "metrics.jsonl)")


def test_reports_name_the_checkpoint_they_measured(swept, tmp_path, monkeypatch):
  """A run still training in the workdir adds a step while the report is made: the header
  named that newer step, not the one measured."""
  workdir = tmp_path / "run"
  shutil.copytree(os.path.join(swept[0], "runs", "K4"), workdir)
  steps = workdir / "checkpoints"
  png_row = rate_distortion.png_row

  def png_row_while_training(images):  # between the codes and the table
    if not (steps / "3").exists():
      shutil.copytree(steps / "2", steps / "3")
    return png_row(images)
  monkeypatch.setattr(rate_distortion, "png_row", png_row_while_training)
  rate_distortion.run(str(workdir), str(tmp_path / "rd"), max_images=8, jpeg_qualities=(50,))
  assert f"{workdir}, checkpoint step 2 " in open(tmp_path / "rd" / "rd.md").readline()
  shutil.rmtree(steps / "3")
  render_digits = out_of_domain.render_digits

  def render_digits_while_training(n):  # after the step is known, before the codes
    shutil.copytree(steps / "2", steps / "3")
    return render_digits(n)
  monkeypatch.setattr(out_of_domain, "render_digits", render_digits_while_training)
  out_of_domain.run(str(workdir), str(tmp_path / "ood"), num_digits=4, quants=("uint8",),
                    max_images=4)
  assert f"{workdir}, checkpoint step 2 " in open(tmp_path / "ood" / "ood.md").readline()


def test_jpeg_byte_counts_match_pillows_streams():
  image = np.asarray(out_of_domain.render_digits(1)[0][0, ..., 0])
  for q in (1, 50, 95):
    full, short = io.BytesIO(), io.BytesIO()
    Image.fromarray(image).save(full, "JPEG", quality=q)
    Image.fromarray(image).save(short, "JPEG", quality=q, streamtype=2)
    tables, scan = rate_distortion.jpeg_segments(full.getvalue())
    assert full.tell() - tables == short.tell()  # Pillow's abbreviated stream has no tables
    # The scan data ends both streams, just before the EOI marker.
    assert full.getvalue()[-scan - 2:] == short.getvalue()[-scan - 2:]
    assert full.getvalue()[-2:] == b"\xff\xd9" and 0 < scan < short.tell() - 40
    data = full.getvalue()  # exactly the bytes after the SOS segment and before EOI
    sos = data.rfind(b"\xff\xda")
    assert scan == len(data) - (sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")) - 2


def test_rendered_digits_look_like_mnist():
  images, labels = out_of_domain.render_digits(20, seed=3)
  assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
  assert list(labels[:10]) == list(range(10))
  assert images.max() == 255 and (images == 0).mean() > 0.6  # white strokes on black
  assert (images[:, :2].max(), images[:, -2:].max()) == (0, 0)  # a margin, like MNIST
  again, _ = out_of_domain.render_digits(20, seed=3)
  np.testing.assert_array_equal(images, again)


def test_out_of_domain_table_and_picture(swept, tmp_path):
  out, _ = swept
  rows = out_of_domain.run(os.path.join(out, "runs", "K4"), str(tmp_path), num_digits=20,
                           quants=("uint8",), max_images=20)
  assert [(r["images"], r["method"]) for r in rows] == [
      ("digits", "autoencoder uint8"), ("digits", "JPEG, scan only"),
      ("in domain", "autoencoder uint8"), ("in domain", "JPEG, scan only")]
  assert rows[0]["bytes_per_image"] == 4
  # JPEG at the size nearest the codes' 4 bytes: its smallest (quality 1) is far above that,
  # and the row counts that JPEG's scan bytes of the same digits.
  digits, _ = out_of_domain.render_digits(20)
  assert rows[1]["setting"] == "quality 1"
  assert rows[1]["bytes_per_image"] == rate_distortion.jpeg(digits, 1)[1]["scan only"] > 4
  assert all(np.isfinite(r["psnr"]) and 0 < r["bytes_per_image"] for r in rows)
  assert Image.open(tmp_path / "ood.png").size[1] > 300  # six rows of pictures


def test_jpeg_near_picks_the_nearest_size():
  images, _ = out_of_domain.render_digits(10)
  sizes = {q: rate_distortion.jpeg(images, q)[1]["scan only"] for q in (5, 20, 40)}
  q, _, nbytes = out_of_domain.jpeg_near(images, sizes[20] + 1, qualities=(5, 20, 40))
  assert (q, nbytes) == (20, sizes[20])


def test_latent_pictures(swept, tmp_path):
  out, _ = swept
  workdir = os.path.join(out, "runs", "K4")
  info = latent.run(workdir, str(tmp_path), max_images=64, steps=5)
  assert info["num_images"] == 64 and info["pair"][0] == 0
  images, _, _ = latent.load_labelled(workdir, 64)
  codes = compress.encode(workdir, images, "float32").values
  distances = np.linalg.norm(codes - codes[0], axis=1)
  assert distances[info["pair"][1]] == distances.max() > 0  # the farthest code from image 0's
  a, b = info["pair"]
  full = compress.encode(workdir, images, "float32")
  strip = latent.interpolate(full, workdir, a, b, steps=5)
  ends = compress.decode(compress.encode(workdir, images[[a, b]], "float32"), workdir)
  np.testing.assert_allclose(strip[[0, -1]], ends, atol=1e-6)  # t = 0 and 1: the two images
  assert sum(info["explained_variance"]) <= 1.0 + 1e-6
  assert Image.open(tmp_path / "latent_pca.png").size[0] > 300
  strip = Image.open(tmp_path / "interpolation.png")
  assert strip.size[0] > 2 * strip.size[1]


def test_latent_takes_the_whole_split_when_max_images_is_larger(swept, tmp_path):
  out, _ = swept
  info = latent.run(os.path.join(out, "runs", "K4"), str(tmp_path), max_images=500, steps=3)
  assert info["num_images"] == 128  # the tiny test split; tfds refused a [:500] slice


@pytest.mark.parametrize("split, message", [
    ("tets", "dataset 'fashion_mnist' has no split 'tets': set --split to one of"),
    ("test[:0]", "split 'test[:0]' of dataset 'fashion_mnist' has no examples: set --split")])
def test_rate_distortion_refuses_a_bad_split_before_making_out(swept, tmp_path, capsys, split,
                                                               message):
  out, _ = swept
  target = tmp_path / "rd"
  args = ["--workdir", os.path.join(out, "runs", "K4"), "--out", str(target), "--split", split]
  assert rate_distortion.main(args) == 2
  err = capsys.readouterr().err
  assert err.strip().splitlines() == [f"error: {err.strip()[7:]}"] and message in err, err
  assert not target.exists()


def test_pca_2d_finds_the_main_axes():
  rng = np.random.default_rng(0)
  codes = rng.normal(size=(2000, 3)) * np.array([10.0, 3.0, 0.1])
  xy, var = latent.pca_2d(codes)
  assert xy.shape == (2000, 2)
  column_var = codes.var(axis=0)  # the axes are the columns: PCA must find their variances
  np.testing.assert_allclose(var, column_var[:2] / column_var.sum(), rtol=1e-3)
  np.testing.assert_allclose(np.abs(np.corrcoef(xy[:, 0], codes[:, 0])[0, 1]), 1, atol=1e-3)
  # Codes are rarely centred: an offset must change neither the variances nor the map's
  # centre.
  xy_moved, var_moved = latent.pca_2d(codes + np.array([50.0, -20.0, 5.0]))
  np.testing.assert_allclose(var_moved, var, rtol=1e-6)
  np.testing.assert_allclose(xy_moved.mean(axis=0), 0, atol=1e-6)


def test_pca_2d_of_one_number_codes():  # latent_dim=1 is a valid config
  xy, var = latent.pca_2d(np.arange(10.0)[:, None])
  assert xy.shape == (10, 2) and not xy[:, 1].any() and list(var) == [1.0, 0.0]


@pytest.mark.parametrize("tool, outputs", [(rate_distortion, rate_distortion.OUTPUTS),
                                           (out_of_domain, out_of_domain.OUTPUTS),
                                           (latent, latent.OUTPUTS)])
def test_existing_outputs_are_kept_unless_overwrite(swept, tmp_path, capsys, tool, outputs,
                                                    monkeypatch):
  out, _ = swept
  workdir = os.path.join(out, "runs", "K4")
  (tmp_path / outputs[-1]).write_bytes(b"mine")
  # Refused before any work: the run's images are never loaded.
  monkeypatch.setattr(data, "load_images", None)
  monkeypatch.setattr(latent, "load_labelled", None)
  args = ["--workdir", workdir, "--out", str(tmp_path), "--max_images", "20"]
  assert tool.main(args) == 2
  err = capsys.readouterr().err
  assert f"already holds {outputs[-1]}" in err and "--overwrite" in err and "Traceback" not in err
  assert (tmp_path / outputs[-1]).read_bytes() == b"mine"
  (tmp_path / "a_file").write_text("mine")
  assert tool.main(["--workdir", workdir, "--out", str(tmp_path / "a_file")]) == 2
  assert "is a file" in capsys.readouterr().err
  monkeypatch.undo()
  extra = ["--num_digits", "10", "--quants", "uint8"] if tool is out_of_domain else []
  assert tool.main(args + extra + ["--overwrite"]) == 0
  assert (tmp_path / outputs[-1]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("tool", [rate_distortion, out_of_domain, latent, sweep])
def test_max_images_must_be_positive(tool, tmp_path, capsys):
  args = ["--out", str(tmp_path), "--max_images", "0"]
  with pytest.raises(SystemExit) as exit_:
    tool.main(args if tool is sweep else ["--workdir", str(tmp_path), *args])
  assert exit_.value.code == 2 and "'0' is not a positive integer" in capsys.readouterr().err

def test_sweep_over_runs_of_another_config_names_its_own_fix(swept, tiny_data, capsys):
  out, _ = swept
  idx_dir, data_dir = tiny_data
  args = ["--out", out, "--ks", "2", "--epochs", "1", "--set", f"data_dir={data_dir}",
          "--set", f"idx_dir={idx_dir}", "--set", "steps_per_epoch=2",
          "--set", "eval_batch_size=64", "--set", "batch_size=16"]  # the runs used 32
  assert sweep.main(args) == 2
  err = capsys.readouterr().err
  assert "another config (differs in batch_size)" in err
  assert f"(in the sweep: move {os.path.join(out, 'runs', 'K2')} away instead)" in err


@pytest.mark.parametrize("tool", [out_of_domain, latent])
def test_out_is_not_made_for_a_run_without_checkpoint(tool, swept, tmp_path, capsys):
  no_ckpt, target = tmp_path / "no_ckpt", tmp_path / "out"
  no_ckpt.mkdir()
  shutil.copy(os.path.join(swept[0], "runs", "K4", "config.json"), no_ckpt / "config.json")
  assert tool.main(["--workdir", str(no_ckpt), "--out", str(target)]) == 2
  assert "has no checkpoint yet" in capsys.readouterr().err
  assert not target.exists()


def test_latent_writes_nothing_for_a_bad_pair_or_a_damaged_decoder(swept, tmp_path, capsys):
  workdir = os.path.join(swept[0], "runs", "K4")
  target = tmp_path / "out"
  assert latent.main(["--workdir", workdir, "--out", str(target), "--pair", "0,500",
                      "--max_images", "20"]) == 2
  assert "--pair (0, 500) must index the first 20" in capsys.readouterr().err
  assert not target.exists()
  damaged = tmp_path / "damaged"
  shutil.copytree(workdir, damaged)
  last = max(int(n) for n in os.listdir(damaged / "checkpoints") if n.isdigit())
  files = [os.path.join(r, n) for r, _, names in
           os.walk(damaged / "checkpoints" / str(last) / "decoder") for n in names]
  with open(max(files, key=os.path.getsize), "r+b") as f:  # its largest array file
    f.truncate(os.path.getsize(f.name) // 2)
  assert latent.main(["--workdir", str(damaged), "--out", str(target), "--max_images", "20"]) == 2
  assert f"the decoder of checkpoint step {last}" in capsys.readouterr().err
  assert not target.exists()  # no picture of the codes without the other


def test_conv_codes_are_labelled_by_their_shape(tmp_path):
  from saved_runs import saved_run  # pylint: disable=import-outside-toplevel
  conv = saved_run(str(tmp_path), "conv")
  images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)
  rows, _ = out_of_domain.compare(conv, images, images, quants=("uint8",))
  assert {r["setting"] for r in rows if r["method"].startswith("autoencoder")} == {"conv 4x4x8"}


def test_tools_find_a_moved_dataset_with_their_own_data_flags(swept, tmp_path, tiny_data,
                                                              monkeypatch, capsys):
  """A run whose config.json data folders are gone (copied to another machine): the tools'
  advice named --config.data_dir, an option they do not have; they now have --data_dir
  and --idx_dir, and their messages name those."""
  # The network cannot exist here; on a machine where it does, the probe says it does not.
  monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: False)
  moved = tmp_path / "moved"
  shutil.copytree(os.path.join(swept[0], "runs", "K4"), moved)
  cfg = json.loads((moved / "config.json").read_text())
  cfg["dataset"] = "mnist"  # not prepared anywhere here
  cfg["data_dir"], cfg["idx_dir"] = str(tmp_path / "gone_tfds"), str(tmp_path / "gone_idx")
  (moved / "config.json").write_text(json.dumps(cfg))
  out = str(tmp_path / "out")
  for tool in (rate_distortion, out_of_domain, latent):
    assert tool.main(["--workdir", str(moved), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--data_dir" in err and "--idx_dir" in err and "--config." not in err, err
    assert not os.path.exists(out)
  cfg["dataset"] = "no_such_set"  # a tfds plugin that is not installed here
  (moved / "config.json").write_text(json.dumps(cfg))
  for tool in (rate_distortion, out_of_domain, latent):
    assert tool.main(["--workdir", str(moved), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'no_such_set': the run's config.json names it" in err, err
    assert "--dataset" not in err and "--config." not in err, err
  cfg["dataset"] = "fashion_mnist"
  (moved / "config.json").write_text(json.dumps(cfg))
  idx_dir, data_dir = tiny_data
  assert rate_distortion.main(["--workdir", str(moved), "--out", out, "--data_dir", data_dir,
                               "--max_images", "20", "--jpeg_qualities", "50"]) == 0
  assert "wrote" in capsys.readouterr().out
  assert latent.main(["--workdir", str(moved), "--out", str(tmp_path / "lat"), "--idx_dir",
                      idx_dir, "--data_dir", str(tmp_path / "new_tfds"),
                      "--max_images", "20"]) == 0
