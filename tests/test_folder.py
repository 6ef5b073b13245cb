"""Your own images: a folder (or numpy arrays) as a dataset, random crops, whole-image
evaluation, and every tool on it (README "Your own images")."""
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ae_jax import models
import ae_jax.data
from ae_jax.core.errors import UserError
from ae_jax.data import folder, folder_builder, idx
from ae_jax.data import pipeline as data
from ae_jax.training import objectives, parallel, steps, train
from conftest import FASHION_DIR, make_images, write_idx, write_image_folder, write_png_folder

TIMING = ("seconds", "images_per_sec")


def _config(dataset, data_dir, **fields):
  from configs import dense  # pylint: disable=import-outside-toplevel
  config = dense.get_config()
  config.dataset, config.data_dir = dataset, data_dir
  config.update(dict(batch_size=8, num_epochs=1, steps_per_epoch=2, eval_batch_size=8,
                     num_images=2, progress_bar=False))
  config.update(fields)
  return config


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]


def _rgb(seed, h, w):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ the folder

def test_splits_classes_and_formats_keep_the_files_order(tmp_path):
  """train/ and test/ with class subfolders, PNG, JPEG and WebP: split i is the i-th file by
  path (class, then name), each with its class's label and its decoded pixels."""
  root = tmp_path / "photos"
  files = {"train": ["cat/b.png", "cat/a.jpg", "dog/c.webp", "dog/a.png"],
           "test": ["dog/z.jpeg", "cat/y.PNG"]}
  pixels = {}
  for split, names in files.items():
    for i, name in enumerate(names):
      os.makedirs(root / split / os.path.dirname(name), exist_ok=True)
      Image.fromarray(_rgb(i, 12, 16)).save(root / split / name)
      with Image.open(root / split / name) as im:
        pixels[f"{split}/{name}"] = np.asarray(im.convert("RGB"))
  (root / "train" / ".DS_Store").write_bytes(b"\0")  # hidden files are passed over
  builder = data.get_builder(f"folder:{root}", str(tmp_path / "tfds"))
  assert isinstance(builder, folder_builder.FolderImages)
  assert data.dataset_name(builder) == f"folder:{root}"
  assert data.image_shape(builder) == (12, 16, 3)
  assert builder.info.features["label"].names == ["cat", "dog"]
  for split in ("train", "test"):
    order = sorted(files[split])
    ds = data._tfds().as_numpy(builder.as_dataset(split=split, batch_size=-1))  # pylint: disable=protected-access
    assert [f.decode() for f in ds["file"]] == [f"{split}/{n}" for n in order]
    assert ds["label"].tolist() == [int(n.startswith("dog")) for n in order]
    np.testing.assert_array_equal(data.load_images(builder, split),
                                  np.stack([pixels[f"{split}/{n}"] for n in order]))


def test_a_pool_is_split_by_a_stable_hash_of_the_paths(tmp_path, monkeypatch):
  root = str(tmp_path / "pool")
  write_png_folder(root, make_images(60, seed=4)[0])
  files = folder.listing(root, test_fraction=0.25)
  test = [f"{i:05d}.png" for i in range(60) if folder.in_test_split(f"{i:05d}.png", 0.25)]
  assert list(files.files["test"]) == test and 5 < len(test) < 25
  assert list(files.files["train"]) == [f"{i:05d}.png" for i in range(60)
                                        if f"{i:05d}.png" not in test]
  assert files.labels is None
  # sha256 of the path, not Python's salted hash(): the same split on every machine.
  digest = hashlib.sha256(b"00007.png").digest()
  assert folder.in_test_split("00007.png", 0.25) == (
      int.from_bytes(digest[:8], "big") / 2**64 < 0.25)
  # A file added leaves every other file in its split, and changes the fingerprint.
  write_png_folder(root, make_images(1, seed=5)[0], names=["zzz"])
  again = folder.listing(root, test_fraction=0.25)
  assert set(files.files["test"]) <= set(again.files["test"])
  assert set(files.files["train"]) <= set(again.files["train"])
  assert again.config_name != files.config_name
  assert folder.listing(root, 0.25).config_name == again.config_name  # unchanged: the same
  assert folder.listing(root, 0.3).config_name != again.config_name
  # Named relative to where a command runs, recorded absolute.
  monkeypatch.chdir(tmp_path)
  assert folder.normalized("folder:pool") == f"folder:{root}"
  assert folder.normalized("fashion_mnist") == "fashion_mnist"


def test_preparation_is_kept_until_the_folder_changes(tmp_path, monkeypatch):
  root = write_image_folder(str(tmp_path / "images"))
  tfds_dir = str(tmp_path / "tfds")
  first = data.get_builder(f"folder:{root}", tfds_dir)
  # Prepared: neither the images nor their headers are read again.
  monkeypatch.setattr(folder, "inspect", lambda files: pytest.fail("headers read again"))
  monkeypatch.setattr(folder, "read_image", lambda *a: pytest.fail("images read again"))
  again = data.get_builder(f"folder:{root}", tfds_dir)
  assert again.data_dir == first.data_dir and again.is_prepared()
  np.testing.assert_array_equal(data.load_images(again, "test"),
                                make_images(10, seed=1)[0][..., None])
  monkeypatch.undo()
  # One image rewritten: another fingerprint, prepared again, with the new pixels.
  Image.fromarray(np.full((28, 28), 7, np.uint8)).save(os.path.join(root, "test", "00002.png"))
  changed = data.get_builder(f"folder:{root}", tfds_dir)
  assert changed.data_dir != first.data_dir
  assert (data.load_images(changed, "test")[2] == 7).all()
  # The record data.Source keeps names the new copy: no run reads the old one.
  source = data.Source(f"folder:{root}", tfds_dir, splits=("test",))
  assert (source.load_images("test")[2] == 7).all()
  assert source.image_shape == (28, 28, 1)


def test_images_of_several_sizes_load_as_a_list(tmp_path):
  root = tmp_path / "sizes"
  shapes = {"train": [(20, 30), (31, 17), (20, 30)], "test": [(25, 25)]}
  for split, sizes in shapes.items():
    write_png_folder(str(root / split), [_rgb(i, *s) for i, s in enumerate(sizes)])
  builder = data.get_builder(f"folder:{root}", str(tmp_path / "tfds"))
  assert data.image_shape(builder) == (None, None, 3)
  for cached in range(2):  # decoded, then from the .npz cache
    images = data.load_images(builder, "train")
    assert isinstance(images, list), cached
    for i, (im, size) in enumerate(zip(images, shapes["train"])):
      np.testing.assert_array_equal(im, _rgb(i, *size))
  source = data.Source(f"folder:{root}", str(tmp_path / "tfds"), splits=("train", "test"))
  assert source.image_shape == (None, None, 3)
  assert source.smallest("train") == (31, 17, str(root / "train" / "00001.png"))
  assert source.megabytes("train") == (2 * 20 * 30 + 31 * 17) * 3 / 2**20


# ------------------------------------------------------------------ numpy arrays

def test_numpy_arrays_are_a_dataset_too(tmp_path):
  train_u8, test_u8 = make_images(20, seed=0)[0], make_images(6, seed=1)[0]
  name = ae_jax.data.from_arrays(train_u8, test_u8, data_dir=str(tmp_path))
  assert name.startswith("folder:" + str(tmp_path / "ae_jax_arrays"))
  assert ae_jax.data.from_arrays(train_u8, test_u8, data_dir=str(tmp_path)) == name  # found again
  builder = data.get_builder(name, str(tmp_path))
  np.testing.assert_array_equal(data.load_images(builder, "train"), train_u8[..., None])
  np.testing.assert_array_equal(data.load_images(builder, "test"), test_u8[..., None])
  ragged = [_rgb(0, 9, 12), _rgb(1, 14, 10)]
  other = ae_jax.data.from_arrays(ragged, ragged[:1], str(tmp_path / "mine"))
  assert other == f"folder:{tmp_path / 'mine'}"
  got = data.load_images(data.get_builder(other, str(tmp_path)), "train")
  assert [g.shape for g in got] == [(9, 12, 3), (14, 10, 3)]
  with pytest.raises(UserError, match=r"train\[0\] is float64 .* give uint8 images"):
    ae_jax.data.from_arrays(np.zeros((2, 4, 4)), test_u8)


def test_png_folder_trains_to_the_idx_builders_numbers_exactly(tmp_path):
  """The first 512 training and 128 test images of Fashion-MNIST, as IDX files (the
  IDX builder) and as PNG files with sorted names (the folder builder): the same images in
  the same order, so two epochs of the dense model log the same metrics to the last digit."""
  assert idx.has_idx_files(FASHION_DIR), f"{FASHION_DIR} is missing"
  idx_dir = tmp_path / "idx"
  os.makedirs(idx_dir)
  subset = {}
  for split, n, (images_stem, labels_stem) in (("train", 512, idx.FILES["train"]),
                                               ("test", 128, idx.FILES["test"])):
    subset[split] = idx.load_images(FASHION_DIR, split)[:n, ..., 0]
    write_idx(str(idx_dir / f"{images_stem}.gz"), subset[split])
    labels = idx.read_idx(idx.find_idx_file(FASHION_DIR, labels_stem))[:n]
    write_idx(str(idx_dir / f"{labels_stem}.gz"), labels)
    write_png_folder(str(tmp_path / "pngs" / split), subset[split])
  fields = dict(num_epochs=2, steps_per_epoch=None, batch_size=32, eval_batch_size=50)
  by_idx = _config("fashion_mnist", str(tmp_path / "tfds"), idx_dir=str(idx_dir), **fields)
  by_folder = _config(f"folder:{tmp_path / 'pngs'}", str(tmp_path / "tfds"), **fields)
  train.train_and_evaluate(by_idx, str(tmp_path / "idx_run"))
  train.train_and_evaluate(by_folder, str(tmp_path / "folder_run"))
  a, b = _rows(tmp_path / "idx_run"), _rows(tmp_path / "folder_run")
  assert [r["step"] for r in a] == [16, 32]
  assert a == b  # every metric of every epoch, val_loss included, to the last digit
  assert a[1]["val_loss"] < a[0]["val_loss"]


# ------------------------------------------------------------------ crops

def test_device_crops_are_windows_drawn_from_the_key():
  images = [_rgb(0, 10, 13), _rgb(1, 7, 9), _rgb(2, 8, 8)]
  pixels, offsets, sizes = data.flat_images(images)
  assert sizes.tolist() == [[10, 13], [7, 9], [8, 8]] and offsets.tolist() == [0, 390, 579]
  perm = jnp.array([2, 0, 1, 1, 2, 0], jnp.int32)
  key = jax.random.key(7)
  crops = np.asarray(data.device_crops(pixels, offsets, sizes, perm, 1, 3, 5, 3, key))
  ky, kx = jax.random.split(key)
  hw = sizes[[1, 2, 0]]
  top = np.asarray(jax.random.randint(ky, (3,), 0, hw[:, 0] - 5 + 1))
  left = np.asarray(jax.random.randint(kx, (3,), 0, hw[:, 1] - 5 + 1))
  for b, i in enumerate([1, 2, 0]):
    np.testing.assert_array_equal(crops[b] * 255, images[i][top[b]:top[b] + 5,
                                                            left[b]:left[b] + 5])
  again = data.device_crops(pixels, offsets, sizes, perm, 1, 3, 5, 3, key)
  np.testing.assert_array_equal(crops, again)
  # Images of one size (an array) lie end to end as they are.
  same = np.stack([_rgb(i, 6, 7) for i in range(3)])
  for a, b in zip(data.flat_images(same), data.flat_images(list(same))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pipeline", ["device", "stream"])
def test_crops_of_images_of_any_size_train_and_resume_exactly(tmp_path, pipeline):
  """A convnet on random 16x16 crops of RGB images of several sizes; evaluated on the whole
  images. A run stopped after its first epoch and resumed ends as an unbroken one."""
  root = tmp_path / "sizes"
  for split, n in (("train", 24), ("test", 5)):
    write_png_folder(str(root / split), [_rgb(10 * i, 16 + i % 9, 18 + i % 7)
                                         for i in range(n)])
  config = _config(f"folder:{root}", str(tmp_path / "tfds"), crop_size=16, num_epochs=2,
                   input_pipeline=pipeline, loss="mse")
  config.encoder = dict(name="convnet", features=(8, 8), latent_channels=4)
  config.decoder = dict(name="convnet", features=(8, 8))
  train.train_and_evaluate(config, str(tmp_path / "unbroken"))
  config.num_epochs = 1
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_epochs = 2
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  a, b = _rows(tmp_path / "unbroken"), _rows(tmp_path / "resumed")
  assert a == b and [r["step"] for r in a] == [2, 4]
  cfg = json.load(open(tmp_path / "unbroken" / "config.json"))
  assert cfg["image_shape"] == [16, 16, 3] and cfg["crop_size"] == 16
  assert cfg["dataset"] == f"folder:{root}"


def test_whole_images_are_evaluated_padded_for_the_convnet(tmp_path):
  """Images of sizes other than the crop: the convnet sees each padded (edge) to a multiple
  of 2^stages and is measured on its own pixels; a model of one size sees centre crops."""
  config = _config("folder:x", None, crop_size=8, loss="mse", eval_batch_size=4)
  config.encoder = dict(name="convnet", features=(4, 4), latent_channels=2)
  config.decoder = dict(name="convnet", features=(4, 4))
  assert models.registry.size_multiple(config) == 4
  images = [_rgb(0, 8, 8)[..., :1], _rgb(1, 9, 6)[..., :1], _rgb(2, 9, 6)[..., :1]]
  sets = train.eval_sets(config, images, (8, 8, 1))
  assert [(len(s[0]), s[2]) for s in sets] == [(1, None), (2, (12, 8))]
  model = models.from_config(config, (8, 8, 1))
  state = steps.create_train_state(model, config, (8, 8, 1))
  val, _ = train.evaluate(state, images, config, parallel.make_mesh(), sets)
  # By hand: the model built for 12x8 on the edge-padded image, cropped back.
  mse = []
  for i, im in enumerate(images):
    h, w = im.shape[:2]
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4
    x = np.pad(im / 255.0, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")[None]
    big = models.from_config(config, (ph, pw, 1))
    out = jax.nn.sigmoid(big.apply({"params": state.params}, x.astype(np.float32)))
    mse.append(float(jnp.mean((out[0, :h, :w] - im / 255.0) ** 2)))
  assert val["val_mse"] == pytest.approx(np.mean(mse), rel=1e-5)
  # The dense model takes 6x6 only: centre crops, and a refusal for an image too small.
  dense = _config("folder:x", None, crop_size=6)
  (cropped, apply_fn, padded), = train.eval_sets(dense, images[:2], (6, 6, 1))
  assert apply_fn is None and padded is None
  np.testing.assert_array_equal(cropped, np.stack([images[0][1:7, 1:7], images[1][1:7]]))
  with pytest.raises(UserError, match=r"image 1 of the test split is 6x9x1, and the run "
                                      r"takes 8x8x1"):
    train.eval_sets(_config("folder:x", None, crop_size=8), images, (8, 8, 1))


def test_a_hyperprior_is_evaluated_on_whole_images_as_its_codes_files_take_them(monkeypatch):
  """The GDN transforms and the hyperprior take any size (their codes files keep each
  image's): evaluation gives each eval image whole, and its rate and error are the model's
  at the image's own size (g_a pads inside as evaluation pads: the same y)."""
  from configs import hyperprior  # pylint: disable=import-outside-toplevel
  config = hyperprior.get_config()
  config.update(dict(dataset="folder:x", crop_size=8, batch_size=8, eval_batch_size=4,
                     num_images=1, progress_bar=False))
  config.encoder.analysis.update(dict(features=4, latent_channels=6, levels=2))
  config.encoder.update(dict(hyper_features=4, hyper_levels=1))
  config.decoder.update(dict(features=4, levels=2))
  assert models.registry.size_multiple(config) == 4
  images = [_rgb(0, 8, 8)[..., :1], _rgb(1, 9, 6)[..., :1]]
  sets = train.eval_sets(config, images, (8, 8, 1))
  assert [(len(s[0]), s[2]) for s in sets] == [(1, None), (1, (12, 8))]
  model = models.from_config(config, (8, 8, 1))
  state = steps.create_train_state(model, config, (8, 8, 1))
  batches = []
  real = data.eval_batches
  monkeypatch.setattr(data, "eval_batches",
                      lambda ims, size: batches.append(size) or real(ims, size))
  val, _ = train.evaluate(state, images, config, parallel.make_mesh(), sets)
  assert batches == [4, 1]  # another size: its own images, not padded to eval_batch_size
  rates, mse = [], []
  for im in images:
    own = models.from_config(config, im.shape)
    x = jnp.asarray(im[None] / 255.0, jnp.float32)
    logits, terms, _ = objectives.apply(own.apply, state.params, x, jax.random.key(0))
    rates.append(float(terms["rate"][0]))
    mse.append(float(jnp.mean((jax.nn.sigmoid(logits[0]) - x[0]) ** 2)))
  assert val["val_rate"] == pytest.approx(np.mean(rates), rel=1e-5)
  assert val["val_mse"] == pytest.approx(np.mean(mse), rel=1e-5)


# ------------------------------------------------------------------ the tools

@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
  """A 28x28 grayscale folder with class subfolders, a dense run and a VAE run on it."""
  tmp = tmp_path_factory.mktemp("folder_runs")
  root = tmp / "clothes"
  for split, n, seed in (("train", 32, 0), ("test", 12, 1)):
    images = make_images(n, seed)[0]
    for cls in ("a", "b"):
      write_png_folder(str(root / split / cls), images[cls == "b"::2],
                       names=[f"{cls}{i:03d}" for i in range(n // 2)])
  dataset, tfds_dir = f"folder:{root}", str(tmp / "tfds")
  train.train_and_evaluate(_config(dataset, tfds_dir), str(tmp / "dense"))
  from configs import vae  # pylint: disable=import-outside-toplevel
  config = vae.get_config()
  config.update(dict(dataset=dataset, data_dir=tfds_dir, batch_size=8, num_epochs=1,
                     steps_per_epoch=2, eval_batch_size=8, num_images=2, progress_bar=False))
  train.train_and_evaluate(config, str(tmp / "vae"))
  return tmp, dataset


def test_every_tool_takes_a_folder_dataset(folder_runs, capsys):
  # pylint: disable=import-outside-toplevel
  from ae_jax.compression import compress_cli, out_of_domain, rate_distortion
  from ae_jax.evaluation import latent, likelihood, sample
  tmp, dataset = folder_runs
  dense, vae = str(tmp / "dense"), str(tmp / "vae")
  assert compress_cli.main(["encode", "--workdir", dense, "--dataset", dataset, "--out",
                            str(tmp / "t.aec")]) == 0
  assert compress_cli.main(["decode", "--workdir", dense, "--codes", str(tmp / "t.aec"),
                            "--dataset", dataset, "--out", str(tmp / "restored")]) == 0
  assert f"round trip vs {dataset}:test: PSNR" in capsys.readouterr().out
  assert len(os.listdir(tmp / "restored")) == 12
  assert rate_distortion.main(["--workdir", dense, "--out", str(tmp / "rd"), "--codecs",
                               "jpeg", "--jpeg_qualities", "10,50"]) == 0
  assert rate_distortion.main(["--workdir", dense, "--whole", "--out", str(tmp / "w")]) == 2
  assert "--whole measures every image at its own size" in capsys.readouterr().err
  assert not os.path.exists(tmp / "w")
  assert rate_distortion.main(["--dataset", dataset, "--out", str(tmp / "classic"),
                               "--codecs", "png"]) == 0
  assert f"12 {dataset} test images" in open(tmp / "classic" / "rd.md").read()
  assert latent.main(["--workdir", dense, "--out", str(tmp / "latent")]) == 0
  assert out_of_domain.main(["--workdir", dense, "--out", str(tmp / "ood"), "--num_digits",
                             "4", "--max_images", "6"]) == 0
  assert likelihood.main(["--workdir", vae, "--num_samples", "2"]) == 0
  assert "12 images, K = 2" in capsys.readouterr().out
  assert sample.main(["--workdir", vae, "--out", str(tmp / "s.png"), "--num", "4"]) == 0
  # A folder the run did not train on, by --dataset: the run's images, centre crops of
  # larger ones (the codes file holds the run's 28x28).
  big = tmp / "big"
  write_png_folder(str(big / "train"), np.pad(make_images(2, 3)[0], ((0, 0), (2, 3), (1, 1))))
  write_png_folder(str(big / "test"), np.pad(make_images(3, 4)[0], ((0, 0), (2, 3), (1, 1))))
  assert compress_cli.main(["encode", "--workdir", dense, "--dataset", f"folder:{big}",
                            "--out", str(tmp / "big.aec")]) == 0
  codes = __import__("ae_jax.compression.codes", fromlist=["x"]).load_codes(
      str(tmp / "big.aec"))
  assert codes.num_images == 3 and tuple(codes.image_shape) == (28, 28, 1)
