"""The codec: quantization bounds and the codes file (ae_jax/compression/codes.py), encode/decode against
the model, the CLI (ae_jax/compression/compress.py)."""
import json
import os
import shutil
import stat
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from ae_jax.training import checkpoint
from ae_jax.compression import compress, compress_cli
from ae_jax.compression import codes as codes_file
from ae_jax.core.errors import UserError
from ae_jax.training import runs as run_lib
from conftest import REPO, run_compress
from saved_runs import saved_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("runs"))
  return {"dense": saved_run(root), "dense_other_seed": saved_run(root, seed=1),
          "conv": saved_run(root, "conv")}


def _images(n=12, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


# ------------------------------------------------------------------------ quantization

@pytest.mark.parametrize("quant", compress.QUANTS)
def test_quantization_error_stays_within_its_bound(quant):
  rng = np.random.default_rng(0)
  # Dimensions of very different ranges, one constant dimension, one tiny.
  z = rng.normal(size=(500, 6)).astype(np.float32) * np.array([1e-3, 0.1, 1, 10, 300, 0],
                                                               np.float32)
  z[:, 5] = 2.5
  values, offset, scale = codes_file.quantize(z, quant)
  assert values.dtype == np.dtype(quant)
  error = np.abs(codes_file.dequantize(values, offset, scale) - z)
  bound = codes_file.error_bound(z, quant, scale)
  assert (error <= bound).all()
  if quant == "uint8":
    np.testing.assert_allclose(bound[:, :5].max(axis=0), (z.max(0) - z.min(0))[:5] / 510,
                               rtol=2e-3)  # half a level of 256 spanning each dimension
    assert error[:, 5].max() == 0  # a constant dimension is kept exactly
    assert error.max(axis=0)[4] > 0.25 * bound[0, 4]  # the bound is not loose
  if quant == "float32":
    assert error.max() == 0


def test_float16_refuses_codes_beyond_its_range():
  with pytest.raises(UserError, match="float16's range.*--quant float32 or uint8"):
    codes_file.quantize(np.array([[1e5, 0.0]], np.float32), "float16")


# ------------------------------------------------------------------------ codes file

@pytest.mark.parametrize("quant", compress.QUANTS)
def test_codes_file_round_trip(runs, tmp_path, quant):
  codes = compress.encode(runs["dense"], _images(5), quant, names=list("abcde"))
  path = str(tmp_path / "c.aec")
  size = compress.save_codes(path, codes)
  assert size == os.path.getsize(path)
  loaded = compress.load_codes(path)
  np.testing.assert_array_equal(loaded.values, codes.values)
  assert loaded.values.dtype == np.dtype(quant)
  for field in ("quant", "model", "latent_dim", "code_shape", "image_shape", "run", "names"):
    assert getattr(loaded, field) == getattr(codes, field), field
  if quant == "uint8":
    np.testing.assert_array_equal(loaded.scale, codes.scale)
  assert loaded.bytes_per_image == 8 * np.dtype(quant).itemsize  # K = 8
  with pytest.raises(UserError, match="already exists.*pass overwrite=True"):  # Python's name
    compress.save_codes(path, codes)


def test_codes_that_load_codes_would_refuse_are_never_written(runs, tmp_path):
  """names for another number of images made a file that loaded as 'corrupt'; an empty
  batch crashed in a reshape. Both are refused before anything is written."""
  with pytest.raises(UserError, match="1 names for 3 images: give one name"):
    compress.encode(runs["dense"], _images(3), "uint8", names=["a"])
  with pytest.raises(UserError, match=r"give one name \(a string\) per image"):
    compress.encode(runs["dense"], _images(3), "uint8", names=["a", 2, "c"])
  with pytest.raises(UserError, match="no images to encode"):
    compress.encode(runs["dense"], _images(3)[:0])
  codes = compress.encode(runs["dense"], _images(3), "uint8")
  codes.names = ["a"]  # changed afterwards, by hand
  path = tmp_path / "c.aec"
  with pytest.raises(ValueError, match="codes not written: 1 names for 3 images"):
    compress.save_codes(str(path), codes)
  codes.names = ["a", 2, "c"]
  with pytest.raises(ValueError, match="codes not written: names that are not all strings"):
    compress.save_codes(str(path), codes)
  assert not path.exists()


def test_decode_refuses_codes_of_another_checkpoint_of_the_same_config_and_step(runs, tmp_path):
  # Another run with the same config hash and the same steps (a rerun with only a
  # resumable field changed, or the workdir after --restart): here the seed-1 run's
  # checkpoints under the seed-0 run's config.json. Only the checkpoints tell them apart.
  impostor, copy = tmp_path / "impostor", tmp_path / "copy"
  shutil.copytree(runs["dense_other_seed"], impostor)
  shutil.copy(os.path.join(runs["dense"], "config.json"), impostor / "config.json")
  shutil.copytree(runs["dense"], copy)
  codes = compress.encode(runs["dense"], _images(3), "float16")
  assert codes.run["checkpoint_id"] == checkpoint.checkpoint_id(runs["dense"], codes.run["step"])
  with pytest.raises(UserError, match="from another checkpoint than step .* decode with the "
                                      "run that encoded them"):
    compress.decode(codes, str(impostor))
  # A copy of the run keeps its checkpoints' identity, and decodes the same images.
  np.testing.assert_array_equal(compress.decode(codes, str(copy)),
                                compress.decode(codes, runs["dense"]))
  # Codes files written before the identity was recorded still decode (older checks only).
  del codes.run["checkpoint_id"]
  assert compress.decode(codes, str(impostor)).shape == (3, 28, 28, 1)


def test_decode_with_a_run_lacking_the_codes_step_names_the_run_that_made_them(runs, tmp_path):
  codes = compress.encode(runs["dense"], _images(2))
  assert codes.quant == "uint8"  # the Python default is the CLI's
  # Another run of the same config that never had step 0 (here: a copy with it renamed).
  other = tmp_path / "other"
  shutil.copytree(runs["dense"], other)
  os.rename(other / "checkpoints" / "0", other / "checkpoints" / "5")
  with pytest.raises(UserError, match=f"which {other} does not have \\(it has \\[5\\]\\): "
                                      f"decode with --workdir {runs['dense']}"):
    compress.decode(codes, str(other))
  # The run that made them, once it no longer keeps the step: encode again.
  codes.run["step"] = 7
  with pytest.raises(UserError, match="no longer keeps .*encode the images again"):
    compress.decode(codes, runs["dense"])


def test_codes_file_header_is_checksummed_and_version_1_files_still_load(runs, tmp_path):
  codes = compress.encode(runs["dense"], _images(3), "uint8", names=["a", "b", "c"])
  blob = codes_file.codes_to_bytes(codes)
  _, version, header_len = codes_file._PREFIX.unpack_from(blob)
  at = codes_file._PREFIX.size + 4  # the header's CRC-32 comes after the prefix
  header, payload = blob[at:at + header_len], blob[at + header_len:]
  assert version == 2 and json.loads(header)["names"] == ["a", "b", "c"]
  # A header altered into other valid JSON (another image name, same length) is refused.
  altered = blob.replace(b'"names":["a"', b'"names":["z"')
  assert altered != blob and json.loads(altered[at:at + header_len])["names"][0] == "z"
  (tmp_path / "altered.aec").write_bytes(altered)
  with pytest.raises(UserError, match="corrupted .*header's checksum"):
    compress.load_codes(str(tmp_path / "altered.aec"))
  # Version 1 (no header CRC), as ae_jax wrote it before, reads back the same codes.
  v1 = codes_file._PREFIX.pack(codes_file.MAGIC, 1, header_len) + header + payload
  (tmp_path / "v1.aec").write_bytes(v1)
  loaded = compress.load_codes(str(tmp_path / "v1.aec"))
  np.testing.assert_array_equal(loaded.values, codes.values)
  assert loaded.names == codes.names and loaded.run == codes.run
  (tmp_path / "v9.aec").write_bytes(codes_file._PREFIX.pack(codes_file.MAGIC, 9, 0))
  with pytest.raises(UserError, match="format version 9; this ae_jax reads versions 1 to 4"):
    compress.load_codes(str(tmp_path / "v9.aec"))


def _small_codes() -> codes_file.Codes:
  """uint8 codes of 3 images written by hand: a codes file without a trained run."""
  z = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
  values, offset, scale = codes_file.quantize(z, "uint8")
  return codes_file.Codes(values=values, quant="uint8", model="dense", latent_dim=8,
                          code_shape=(8,), image_shape=(28, 28, 1),
                          run={"workdir": "runs/dense", "config_hash": "0", "step": 1},
                          offset=offset, scale=scale)


def test_a_damaged_header_length_field_is_named_as_such():
  """A header-length field damaged to a large value read 'truncated (its header is cut
  short)', as a file cut inside its header still does."""
  blob = codes_file.codes_to_bytes(_small_codes())
  magic, version, header_len = codes_file._PREFIX.unpack_from(blob)
  after = blob[codes_file._PREFIX.size:]  # the header's CRC, the header, the payload
  for wrong in (header_len + 100_000, header_len + 1, header_len - 1, 0):
    with pytest.raises(UserError, match=rf"^x.aec has a damaged header-length field \(it says "
                                        rf"{wrong} bytes; the header has {header_len}\): encode"):
      codes_file.codes_from_bytes(codes_file._PREFIX.pack(magic, version, wrong) + after, "x.aec")
  # Version 1 has no header CRC: the JSON's own end tells the same.
  v1 = codes_file._PREFIX.pack(magic, 1, header_len - 2) + after[4:]
  with pytest.raises(UserError, match=rf"damaged header-length field \(it says {header_len - 2}"):
    codes_file.codes_from_bytes(v1, "x.aec")
  cut = blob[:codes_file._PREFIX.size + 4 + header_len // 2]
  with pytest.raises(UserError, match=r"^x.aec is truncated \(its header is cut short\)"):
    codes_file.codes_from_bytes(cut, "x.aec")
  assert codes_file.codes_from_bytes(blob).values.shape == (3, 8)


def _dense_image_bound(workdir, codes32, quant, scale):
  """|sigmoid(W z' + b) - sigmoid(W z + b)| <= 1/4 * |W| @ |z' - z| (sigmoid is 1/4-Lipschitz)."""
  _, variables = checkpoint.restore_decoder(workdir)
  kernel = np.abs(np.asarray(variables["params"]["output"]["kernel"], np.float64))
  return 0.25 * codes_file.error_bound(codes32, quant, scale).astype(np.float64) @ kernel


@pytest.mark.parametrize("quant", compress.QUANTS)
def test_encode_then_decode_is_the_autoencoder_up_to_the_quantization(runs, tmp_path, quant):
  workdir, images = runs["dense"], _images()
  path = str(tmp_path / "c.aec")
  compress.save_codes(path, compress.encode(workdir, images, quant))
  restored = compress.decode(compress.load_codes(path), workdir)
  model, variables = checkpoint.restore_autoencoder(workdir)
  expected = np.asarray(jax.nn.sigmoid(model.apply(variables, images / 255.0)))
  error = np.abs(restored - expected).reshape(len(images), -1)
  codes32 = compress.encode(workdir, images, "float32").values
  _, _, scale = codes_file.quantize(codes32, quant)
  bound = _dense_image_bound(workdir, codes32, quant, scale) + 1e-6  # + float32 rounding
  assert (error <= bound).all()
  assert bound.max() < 0.05  # the bound says something
  if quant == "float32":
    assert error.max() < 1e-6


def test_conv_codes_round_trip(runs, tmp_path):
  # The untrained conv run's images all lie near 0.5, so an image-space tolerance would say
  # little: each stage is checked tightly instead (codes, their uint8 error, the decoder).
  workdir, images = runs["conv"], _images()
  model, variables = checkpoint.restore_autoencoder(workdir)
  z = np.asarray(model.apply(variables, images / 255.0, method="encode")).reshape(len(images), -1)
  codes32 = compress.encode(workdir, images, "float32")
  np.testing.assert_allclose(codes32.values, z, atol=1e-6)
  expected = np.asarray(model.apply(variables, images / 255.0, method="reconstruct"))
  np.testing.assert_allclose(compress.decode(codes32, workdir), expected, atol=1e-6)
  codes = compress.encode(workdir, images, "uint8")
  assert codes.code_shape == (4, 4, 8) and codes.values.shape == (len(images), 128)
  dequantized = codes.dequantized()
  bound = codes_file.error_bound(z, "uint8", codes.scale) + 1e-6
  assert (np.abs(dequantized.reshape(len(images), -1) - z) <= bound).all()
  restored = compress.decode(codes, workdir)
  np.testing.assert_allclose(
      restored, model.apply(variables, dequantized, method="decode"), atol=1e-6)  # sigmoid in


def test_encode_reads_only_the_encoder_and_decode_only_the_decoder(runs, monkeypatch):
  def refuse(*_, **__):
    raise AssertionError("restored the other half")
  monkeypatch.setattr(checkpoint, "restore_decoder", refuse)
  codes = compress.encode(runs["dense"], _images(2), "uint8")
  monkeypatch.undo()
  monkeypatch.setattr(checkpoint, "restore_encoder", refuse)
  assert compress.decode(codes, runs["dense"]).shape == (2, 28, 28, 1)


def test_cli_png_folder_round_trip_keeps_names_and_reports_quality(runs, tmp_path, capsys):
  folder = tmp_path / "pngs"
  folder.mkdir()
  images = _images(3)
  for name, image in zip(("shoe", "bag", "coat"), images):
    Image.fromarray(image[..., 0]).save(folder / f"{name}.png")
  out, codes_path = tmp_path / "restored", str(tmp_path / "c.aec")
  wd = runs["dense"]
  assert compress_cli.main(["encode", "--workdir", wd, "--images", str(folder), "--out",
                        codes_path]) == 0
  assert "8 B/image" in capsys.readouterr().out
  # --max_images takes the first N PNGs by name.
  assert compress_cli.main(["encode", "--workdir", wd, "--images", str(folder), "--out",
                        str(tmp_path / "two.aec"), "--max_images", "2"]) == 0
  assert "2 images" in capsys.readouterr().out
  assert compress.load_codes(str(tmp_path / "two.aec")).names == ["bag", "coat"]
  assert compress_cli.main(["decode", "--workdir", wd, "--codes", codes_path, "--out", str(out),
                        "--images", str(folder)]) == 0
  line = capsys.readouterr().out
  assert "PSNR" in line and "SSIM" in line and "98.0x smaller than the raw 784 B" in line
  assert f"-> {out}/: " in line
  assert sorted(os.listdir(out)) == ["bag.png", "coat.png", "shoe.png"]
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask  # not mkdtemp's private 0700
  # --overwrite writes into the folder: same names replaced, other files kept and counted.
  (out / "old.png").write_bytes(b"mine")
  assert compress_cli.main(["decode", "--workdir", wd, "--codes", codes_path, "--out", str(out),
                        "--overwrite"]) == 0
  assert "also holds 1 other .png files, kept" in capsys.readouterr().out
  assert (out / "old.png").read_bytes() == b"mine" and len(os.listdir(out)) == 4
  expected = compress.decode(compress.encode(wd, images[[1]], "uint8"), wd)
  got = np.asarray(Image.open(out / "bag.png"))
  # Same codes up to the uint8 levels (fitted to 1 vs 3 images), then rounded to pixels.
  assert np.abs(got / 255.0 - expected[0, ..., 0]).max() < 0.02


# --------------------------------------------------------------------- bad input, CLI

def _png(path, array, mode=None):
  Image.fromarray(array, mode).save(path)


@pytest.fixture(scope="module")
def bad_cases(runs, tmp_path_factory):
  """Every refusal, run as a user would (subprocesses, started together: they mostly import)."""
  t = tmp_path_factory.mktemp("bad")
  good = t / "good"
  good.mkdir()
  _png(good / "a.png", _images(1)[0, ..., 0])
  shutil.copy(good / "a.png", t / "a_original.png")
  for name, fill in (("big", np.zeros((32, 32), np.uint8)), ("rgb", np.zeros((28, 28, 3), np.uint8))):
    (t / name).mkdir()
    _png(t / name / "x.png", fill)
  (t / "i16").mkdir()
  Image.fromarray(np.full((28, 28), 40000, np.uint16)).save(t / "i16" / "x.png")
  (t / "twins").mkdir()
  for name in ("x.png", "x.PNG"):
    _png(t / "twins" / name, np.zeros((28, 28), np.uint8))
  (t / "junk").mkdir()
  (t / "junk" / "x.png").write_bytes(b"not a png at all")
  no_ckpt, no_run = t / "no_ckpt", t / "no_run"
  no_ckpt.mkdir()
  no_run.mkdir()
  (no_ckpt / "config.json").write_text(open(os.path.join(runs["dense"], "config.json")).read())
  codes = compress.encode(runs["dense"], _images(4), "uint8")
  blob = codes_file.codes_to_bytes(codes)
  (t / "good.aec").write_bytes(blob)
  (t / "truncated.aec").write_bytes(blob[:-10])
  (t / "cut_header.aec").write_bytes(blob[:20])
  magic, version, header_len = codes_file._PREFIX.unpack_from(blob)
  (t / "bad_length.aec").write_bytes(codes_file._PREFIX.pack(magic, version, header_len + 10**6)
                                     + blob[codes_file._PREFIX.size:])
  (t / "garbage.aec").write_bytes(os.urandom(300))
  flipped = bytearray(blob)
  flipped[-1] ^= 0xFF
  (t / "flipped.aec").write_bytes(bytes(flipped))
  (t / "exists.aec").write_bytes(b"keep me")
  (t / "exists_dir").mkdir()
  (t / "exists_dir" / "keep.txt").write_text("keep me")
  dense, conv, other = runs["dense"], runs["conv"], runs["dense_other_seed"]
  enc = lambda wd, images, out: ["encode", "--workdir", str(wd), "--images", str(images),
                                 "--out", str(t / out)]
  dec = lambda wd, codes, out: ["decode", "--workdir", str(wd), "--codes", str(t / codes),
                                "--out", str(t / out)]
  cases = {
      "encode_out_exists": (enc(dense, good, "exists.aec"), "already exists.*--overwrite"),
      "wrong_size": (enc(dense, t / "big", "o1.aec"), "32x32.*takes 28x28.*resize"),
      "wrong_channels": (enc(dense, t / "rgb", "o2.aec"), "mode RGB.*convert"),
      # Image.convert('L') clips 16-bit pixels: the advice must not lead to white images.
      "sixteen_bit": (enc(dense, t / "i16", "o9.aec"),
                      r"mode I;16.*scale it to 8 bits first \(16-bit pixels // 257"),
      "encode_out_is_folder": (enc(dense, good, "exists_dir") + ["--overwrite"],
                               "exists_dir is a folder, not a file: choose another path"),
      "unreadable_image": (enc(dense, t / "junk", "o3.aec"), "cannot read image.*readable PNG"),
      "twin_names": (enc(dense, t / "twins", "o8.aec"),
                     "holds x.PNG and x.png, one name once the .png is dropped: rename one"),
      "no_checkpoint": (enc(no_ckpt, good, "o4.aec"), "no checkpoint yet: train it first"),
      "no_run": (enc(no_run, good, "o5.aec"), "no run.*training run"),
      "no_images": (["encode", "--workdir", dense, "--out", str(t / "o6.aec")],
                    "either --images FOLDER or --dataset"),
      "bad_quant": (enc(dense, good, "o7.aec") + ["--quant", "int4"], "invalid choice: 'int4'"),
      "index_without_codebook": (enc(dense, good, "o10.aec") + ["--quant", "index"],
                                 "--quant index stores codebook indices.*dense model without "
                                 "a codebook: use --quant float32, float16 or uint8"),
      "garbage_codes": (dec(dense, "garbage.aec", "d1"), "not an ae_jax codes file"),
      "truncated_codes": (dec(dense, "truncated.aec", "d2"), "truncated.*encode the images again"),
      "cut_header": (dec(dense, "cut_header.aec", "d3"), "truncated.*header"),
      "damaged_header_length": (dec(dense, "bad_length.aec", "d8"),
                                r"damaged header-length field \(it says \d+ bytes; the header "
                                r"has \d+\): encode the images again"),
      "corrupt_codes": (dec(dense, "flipped.aec", "d4"), "corrupted.*checksum"),
      "missing_codes": (dec(dense, "nowhere.aec", "d5"), "cannot read codes file.*No such file"),
      "another_run": (dec(other, "good.aec", "d6"), "made by run .*seed0.*decode with --workdir"),
      "another_model": (dec(conv, "good.aec", "d7"), "dense model.*conv model.*--workdir"),
      "decode_out_exists": (dec(dense, "good.aec", "exists_dir"), "already exists.*--overwrite"),
      # --overwrite allows an existing folder, not the originals' own: they were replaced.
      "decode_over_originals": (dec(dense, "good.aec", "good") + ["--images", str(good),
                                                                  "--overwrite"],
                                "is where the --images originals are.*give another --out"),
  }
  # A few cases as a user meets them, in their own processes (started together: they mostly
  # import), so that nothing a fresh process prints (an import's warning, a traceback) goes
  # unseen: a command-line error, a refusal before and one after a run is loaded, and one
  # that touches the user's files. The others through the same entry point in this process
  # (`compress_cli.main`, what `python -m ae_jax.compress` runs), which costs no imports.
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  procs = {name: subprocess.Popen([sys.executable, "-m", "ae_jax.compress", *argv], cwd=REPO,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
           for name, (argv, _) in cases.items() if name in IN_THEIR_OWN_PROCESS}
  results = {name: _in_process(argv) for name, (argv, _) in cases.items()
             if name not in IN_THEIR_OWN_PROCESS}
  results.update({name: (p.wait(timeout=120), p.stdout.read(), p.stderr.read())
                  for name, p in procs.items()})
  return t, cases, results


IN_THEIR_OWN_PROCESS = ("bad_quant", "no_run", "another_model", "decode_over_originals")


def _in_process(argv):
  """(exit status, stdout, stderr) of `python -m ae_jax.compress ARGV`, run in this process."""
  done = run_compress(argv, own_process=False)
  return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", [
    "encode_out_exists", "wrong_size", "wrong_channels", "unreadable_image", "twin_names",
    "no_checkpoint",
    "no_run", "no_images", "bad_quant", "garbage_codes", "truncated_codes", "cut_header",
    "damaged_header_length",
    "corrupt_codes", "missing_codes", "another_run", "another_model", "decode_out_exists",
    "decode_over_originals", "sixteen_bit", "encode_out_is_folder", "index_without_codebook"])
def test_bad_input_is_refused_in_one_line(bad_cases, case):
  import re  # pylint: disable=import-outside-toplevel
  t, cases, results = bad_cases
  rc, out, err = results[case]
  lines = err.strip().splitlines()
  assert rc == 2, err
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  assert re.search(cases[case][1], lines[0]), lines[0]
  assert out == ""
  # Nothing written, nothing overwritten.
  assert (t / "exists.aec").read_bytes() == b"keep me"
  assert os.listdir(t / "exists_dir") == ["keep.txt"]
  assert os.listdir(t / "good") == ["a.png"]
  assert (t / "good" / "a.png").read_bytes() == (t / "a_original.png").read_bytes()
  assert not [p for p in os.listdir(t) if re.fullmatch(r"(o\d\.aec|d\d)(\.tmp.*)?", p)
              or p.startswith(".decode-")]


def test_png_folder_that_cannot_be_written_is_one_clear_error(tmp_path):
  images = np.zeros((2, 28, 28, 1), np.uint8)
  with pytest.raises(UserError, match="cannot write the images to /proc/ae_jax_out"):
    compress.write_png_folder("/proc/ae_jax_out", images, None)  # /proc takes no folders
  compress.write_png_folder(str(tmp_path / "ok"), images, None)
  assert sorted(os.listdir(tmp_path)) == ["ok"]  # no temporary folder left behind
  assert sorted(os.listdir(tmp_path / "ok")) == ["00000.png", "00001.png"]


def test_cli_dataset_round_trip_and_info(runs, tiny_data, tmp_path, capsys):
  """The README's commands: encode a tfds split, describe the file, decode against it."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  _, data_dir = tiny_data
  wd, codes_path, out = runs["dense"], str(tmp_path / "test.aec"), tmp_path / "restored"
  source = ["--dataset", "fashion_mnist", "--split", "test", "--data_dir", data_dir]
  assert compress_cli.main(["encode", "--workdir", wd, *source, "--max_images", "5",
                        "--quant", "uint8", "--out", codes_path]) == 0
  assert "5 images" in capsys.readouterr().out
  assert compress_cli.main(["info", "--codes", codes_path]) == 0
  assert "5 images, dense code (8,) as uint8: 8 B/image" in capsys.readouterr().out
  assert compress_cli.main(["decode", "--workdir", wd, "--codes", codes_path, "--out", str(out),
                        *source, "--max_images", "5"]) == 0
  assert "PSNR" in capsys.readouterr().out
  images = data.load_images(data.get_builder("fashion_mnist", data_dir, None), "test", 5)
  expected = compress.decode(compress.encode(wd, images, "uint8"), wd)
  got = np.stack([np.asarray(Image.open(out / f"{i:05d}.png")) for i in range(5)])
  np.testing.assert_array_equal(got, np.round(expected[..., 0] * 255).astype(np.uint8))


def test_dataset_errors_name_the_tools_own_options(runs, tiny_data, tmp_path, monkeypatch,
                                                   capsys):
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  # The network cannot be used in tests: where it is up, the probe is told it is not.
  monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: False)
  assert compress_cli.main(["encode", "--workdir", runs["dense"], "--dataset", "mnist",
                        "--data_dir", str(tmp_path / "tfds"), "--idx_dir", str(tmp_path / "none"),
                        "--out", str(tmp_path / "c.aec")]) == 2
  err = capsys.readouterr().err
  assert "or set --data_dir or put its four IDX files in a folder and set --idx_dir" in err
  assert "--config." not in err and not os.path.exists(tmp_path / "c.aec")
  # Following the advice: --idx_dir prepares the dataset from the IDX files there.
  assert compress_cli.main(["encode", "--workdir", runs["dense"], "--dataset", "mnist",
                        "--data_dir", str(tmp_path / "tfds"), "--idx_dir", tiny_data[0],
                        "--max_images", "3", "--out", str(tmp_path / "c.aec")]) == 0
  assert "encoded mnist:test" in capsys.readouterr().out


def test_codes_hashed_before_more_fields_became_resumable_still_decode(runs):
  codes = compress.encode(runs["dense"], _images(2))
  cfg = run_lib.read_run_config(runs["dense"])
  earlier = run_lib.config_hash(cfg, run_lib.EARLIER_RESUMABLE)  # pylint: disable=protected-access
  assert earlier != codes.run["config_hash"] == run_lib.config_hash(cfg)
  codes.run["config_hash"] = earlier  # as a codes file of the earlier version holds it
  assert compress.decode(codes, runs["dense"]).shape == (2, 28, 28, 1)
  cfg["num_images"] = 3  # a resume may change it: the same weights, the same hash
  assert run_lib.config_hash(cfg) == run_lib.config_hash(run_lib.read_run_config(runs["dense"]))


def test_codes_decode_with_their_checkpoint_after_resumable_fields_changed(runs, tmp_path):
  # The earlier form of the hash covered num_images: once a resume changed it, that hash
  # no longer matches, but the checkpoint (step and identity) is still the one.
  run = tmp_path / "run"
  shutil.copytree(runs["dense"], run)
  codes = compress.encode(str(run), _images(2))
  cfg = run_lib.read_run_config(str(run))
  codes.run["config_hash"] = run_lib.config_hash(cfg, run_lib.EARLIER_RESUMABLE)  # pylint: disable=protected-access
  cfg["num_images"] = 3
  (run / "config.json").write_text(json.dumps(cfg))
  assert compress.decode(codes, str(run)).shape == (2, 28, 28, 1)
  del codes.run["checkpoint_id"]  # without the identity, the hash must match
  with pytest.raises(UserError, match="decode with --workdir"):
    compress.decode(codes, str(run))
