"""Data sources (IDX builder, tfds, offline fast-fail), noise and both pipelines."""
import json
import os
import shutil
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from ae_jax.data import pipeline as data
from ae_jax.data import idx, idx_builder
from ae_jax.core.errors import UserError
from conftest import make_images, write_idx


def test_idx_reader_round_trip(tmp_path):
  images, _ = make_images(5, seed=3)
  write_idx(str(tmp_path / "x.gz"), images)
  np.testing.assert_array_equal(idx.read_idx(str(tmp_path / "x.gz")), images)
  (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05garbage")
  with pytest.raises(ValueError, match="header says"):
    idx.read_idx(str(tmp_path / "bad"))
  # A gzip whose compressed stream is damaged (zlib.error, which is not an OSError).
  blob = bytearray((tmp_path / "x.gz").read_bytes())
  blob[30:60] = bytes(30)
  (tmp_path / "damaged.gz").write_bytes(bytes(blob))
  with pytest.raises(ValueError, match="damaged"):
    idx.read_idx(str(tmp_path / "damaged.gz"))


def test_builder_prepares_from_idx_files_and_reuses_them(tiny_data):
  idx_dir, data_dir = tiny_data
  builder = data.get_builder("fashion_mnist", data_dir, idx_dir=None)  # prepared: no files needed
  assert isinstance(builder, idx_builder.IdxImages)
  assert data.image_shape(builder) == (28, 28, 1)
  assert data.num_examples(builder, "train") == 512
  train = data.load_images(builder, "train")
  expected, expected_labels = make_images(512, seed=0)
  # Image i of the split is image i of the IDX file (tfds' writer would shuffle them).
  np.testing.assert_array_equal(train, expected[..., None])
  np.testing.assert_array_equal(data.load_images(builder, "train"), train)  # the cache
  # Each image keeps its own label (latent.py colours its PCA map by them).
  pairs = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1))
  np.testing.assert_array_equal(pairs["image"], expected[..., None])
  np.testing.assert_array_equal(pairs["label"], expected_labels)
  np.testing.assert_array_equal(data.load_images(builder, "test", max_examples=7),
                                make_images(128, seed=1)[0][:7, ..., None])
  with pytest.raises(UserError, match="no split 'validation'"):
    data.num_examples(builder, "validation")


def test_a_record_of_the_shuffled_idx_version_is_not_trusted(tiny_data, tmp_path):
  """Version 1.0.0 of the IDX builder stored its splits shuffled. A record of it (or one of
  the unversioned records of that time) must not feed a run its old-order caches."""
  idx_dir, data_dir = tiny_data
  data_dir = shutil.copytree(data_dir, tmp_path / "tfds")
  source = data.Source("fashion_mnist", str(data_dir), idx_dir, splits=("train",))
  record = json.load(open(data_dir / "ae_jax_prepared" / "fashion_mnist.v2.json"))
  assert (record["builder"], record["version"]) == ("idx_images", idx.VERSION)
  old_dir = data_dir / "idx_images" / "fashion_mnist" / "1.0.0"
  old_dir.mkdir()
  np.save(old_dir / "train.images.npy", source.load_images("train")[::-1])  # "shuffled"
  record.update(data_dir=str(old_dir), version="1.0.0")
  (data_dir / "ae_jax_prepared" / "fashion_mnist.v2.json").write_text(json.dumps(record))
  again = data.Source("fashion_mnist", str(data_dir), idx_dir, splits=("train",))
  np.testing.assert_array_equal(again.load_images("train"), make_images(512, 0)[0][..., None])
  assert json.load(open(data_dir / "ae_jax_prepared" / "fashion_mnist.v2.json"))[
      "version"] == idx.VERSION  # rewritten


@pytest.mark.parametrize("damage,match", [
    ("images_as_labels", "expected N x 28 x 28 images and N labels"),
    ("label_10", "labels up to 10, but fashion_mnist has 10 classes"),
])
def test_idx_labels_that_do_not_fit_are_one_clear_error(tiny_data, tmp_path, damage, match):
  """A labels file holding images (swapped names) gave a TypeError traceback; a label
  beyond the classes, a generic one."""
  idx_dir = shutil.copytree(tiny_data[0], tmp_path / "idx")
  labels = idx_dir / "train-labels-idx1-ubyte.gz"
  if damage == "images_as_labels":
    shutil.copy(idx_dir / "train-images-idx3-ubyte.gz", labels)
  else:
    write_idx(str(labels), np.full(512, 10, np.uint8))
  with pytest.raises(UserError, match=f"IDX files in {idx_dir} cannot be read.*{match}"):
    data.get_builder("fashion_mnist", str(tmp_path / "tfds"), str(idx_dir))


def test_unknown_dataset_is_refused(tmp_path):
  with pytest.raises(UserError, match="unknown dataset 'no_such_set'"):
    data.get_builder("no_such_set", str(tmp_path))


def test_offline_dataset_fails_fast_with_the_fix(tmp_path, monkeypatch):
  # The network cannot exist here; on a machine where it does, the probe is forced to
  # report it unreachable so tfds never starts its ~200 s of retries.
  monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: False)
  t0 = time.perf_counter()
  with pytest.raises(UserError, match="cannot be downloaded.*data_dir.*idx_dir"):
    data.get_builder("mnist", str(tmp_path), idx_dir=str(tmp_path / "missing"))
  assert time.perf_counter() - t0 < 10



def test_fashion_mnists_idx_folder_never_stands_in_for_mnist(tmp_path, monkeypatch):
  # Debian's Fashion-MNIST folder (the default idx_dir) must not be prepared as "mnist".
  # The network cannot exist here; the probe says it is down, as it is.
  monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: False)
  with pytest.raises(UserError, match="cannot be downloaded \\(no network; --config.idx_dir "
                                      ".*holds fashion_mnist's IDX files, not mnist's\\)"):
    data.get_builder("mnist", str(tmp_path), idx_dir=data.DEFAULT_IDX_DIR)
  assert not list(tmp_path.rglob("*.tfrecord*"))  # nothing prepared


def test_a_failed_download_is_one_clear_error(tmp_path, monkeypatch):
  # The network cannot exist here: the probe is told it is up, and tfds' real imagenet2012
  # builder then fails before any download, as it does everywhere, for want of the files
  # it needs in its manual folder.
  monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: True)
  with pytest.raises(UserError, match="'imagenet2012' could not be downloaded and prepared.*"
                                      "Manual directory.*--config.data_dir"):
    data.get_builder("imagenet2012", str(tmp_path))

def test_network_probe_gives_up_quickly():
  t0 = time.perf_counter()
  assert data.network_reachable(["host.invalid"], timeout=1.0) is False
  assert time.perf_counter() - t0 < 3


def test_noise_statistics_and_determinism():
  clean = jnp.zeros((64, 28, 28, 1))
  key = jax.random.key(0)
  raw = data.add_noise(key, clean - 10.0, 0.5, 0.1)  # far below 0: all clipped to 0
  assert float(raw.max()) == 0.0
  # Before clipping (values of a mid-grey image stay inside [0, 1]): mean 0.5, std 0.1.
  grey = jnp.full((64, 28, 28, 1), 0.2)
  noisy = data.add_noise(key, grey, 0.5, 0.1)
  noise = np.asarray(noisy - grey)
  assert abs(noise.mean() - 0.5) < 0.005 and abs(noise.std() - 0.1) < 0.005
  bright = data.add_noise(key, jnp.full((64, 28, 28, 1), 0.9), 0.5, 0.1)
  assert float(bright.min()) >= 0.0 and float(bright.max()) == 1.0
  np.testing.assert_array_equal(data.add_noise(key, grey, 0.5, 0.1), noisy)
  assert not np.array_equal(data.add_noise(jax.random.fold_in(key, 1), grey, 0.5, 0.1), noisy)
  assert data.add_noise(key, grey, 0.5, 0.0) is grey  # scale 0: noise off


def test_noise_drawn_flat_is_the_noise_drawn_in_the_image_shape():
  # add_noise draws on [B, H*W*C] for XLA:CPU's sake; the numbers must be those of the
  # literal form (drawn in the image shape), bit for bit, eagerly and compiled alike.
  def literal(key, clean, loc, scale):
    return jnp.clip(clean + (loc + scale * jax.random.normal(key, clean.shape)), 0.0, 1.0)

  for shape in ((5, 4, 3, 2), (16, 28, 28, 1)):
    key = jax.random.key(7)
    clean = jax.random.uniform(jax.random.key(1), shape)
    np.testing.assert_array_equal(data.add_noise(key, clean, 0.5, 0.1),
                                  literal(key, clean, 0.5, 0.1))
    compiled = [jax.jit(f, static_argnums=(2, 3))(key, clean, 0.5, 0.1)
                for f in (data.add_noise, literal)]
    np.testing.assert_array_equal(*compiled)


def test_device_batches_follow_a_seeded_permutation():
  images = jnp.arange(10, dtype=jnp.uint8).reshape(10, 1, 1, 1)
  perm = data.epoch_permutation(seed=0, epoch=0, n=10)
  np.testing.assert_array_equal(data.epoch_permutation(0, 0, 10), perm)
  assert not np.array_equal(data.epoch_permutation(0, 1, 10), perm)
  assert not np.array_equal(data.epoch_permutation(1, 0, 10), perm)
  np.testing.assert_array_equal(np.sort(perm), np.arange(10))  # every example once
  assert perm.dtype == np.int32
  batch = data.device_batch(images, perm, jnp.int32(1), 4)
  np.testing.assert_allclose(batch.ravel() * 255, perm[4:8], atol=1e-4)


def test_device_batch_is_the_permuted_images_in_their_shape():
  # device_batch gathers rows of the flattened images: each image must come back whole,
  # in its own shape and channel order.
  images = np.random.default_rng(0).integers(0, 256, (12, 5, 4, 3), np.uint8)
  perm = data.epoch_permutation(seed=3, epoch=2, n=12)
  batch = data.device_batch(jnp.asarray(images), jnp.asarray(perm), jnp.int32(2), 4)
  assert batch.shape == (4, 5, 4, 3) and batch.dtype == jnp.float32
  np.testing.assert_array_equal(np.rint(np.asarray(batch) * 255), images[perm[8:12]])
  np.testing.assert_allclose(batch, images[perm[8:12]] / 255.0, rtol=1e-6)


def _stream(builder, epoch, scale=0.1, start=0):
  return list(data.stream_epoch(builder, "train", batch_size=32, steps=3, epoch=epoch, seed=7,
                                loc=0.5, scale=scale, first_step=epoch * 3, start=start))


def test_stream_pipeline_noise_fresh_per_epoch_identical_on_rerun(tiny_data):
  builder = data.get_builder("fashion_mnist", tiny_data[1])
  e0, again, e1 = _stream(builder, 0), _stream(builder, 0), _stream(builder, 1)
  assert len(e0) == 3 and e0[0][0].shape == (32, 28, 28, 1) and e0[0][0].dtype == np.float32
  for (n0, c0), (n1, c1) in zip(e0, again):
    np.testing.assert_array_equal(n0, n1)
    np.testing.assert_array_equal(c0, c1)
  assert not np.array_equal(e0[0][1], e1[0][1])  # another order in another epoch
  noisy, clean = e0[0]
  assert noisy.min() >= 0 and noisy.max() <= 1
  dark = clean == 0  # background pixels: noise mean 0.5 std 0.1 survives the clipping
  assert abs((noisy - clean)[dark].mean() - 0.5) < 0.01
  assert abs((noisy - clean)[dark].std() - 0.1) < 0.01
  resumed = _stream(builder, 0, start=1)  # a resume skips the batches already seen
  np.testing.assert_array_equal(resumed[0][0], e0[1][0])
  plain = _stream(builder, 0, scale=0.0)
  np.testing.assert_array_equal(plain[0][0], plain[0][1])


def test_eval_batches_pad_and_mask():
  images = np.full((5, 28, 28, 1), 255, np.uint8)
  batches = list(data.eval_batches(images, batch_size=4))
  assert [b[1].tolist() for b in batches] == [[1, 1, 1, 1], [1, 0, 0, 0]]
  assert [b[2] for b in batches] == [0, 1]
  np.testing.assert_allclose(batches[1][0][0], 1.0)
  np.testing.assert_allclose(batches[1][0][1:], 0.0)


def test_device_pipeline_and_checkpoints_import_without_tensorflow(tmp_path):
  """Accelerator images often lack TensorFlow: the in-jit pipeline, the steps, checkpoints
  and the IDX reader must not need it (scripts/accelerator_check.py relies on this)."""
  write_idx(str(tmp_path / "x.gz"), make_images(3, seed=0)[0])
  code = f"""
import sys
sys.modules["tensorflow"] = sys.modules["tensorflow_datasets"] = None  # import fails
from ae_jax.training import checkpoint, steps
from ae_jax.data import pipeline as data
from ae_jax.data import idx
images = idx.read_idx({str(tmp_path / "x.gz")!r})[..., None]
perm = data.epoch_permutation(0, 0, len(images))
print(data.device_batch(images, perm, 0, 2).shape)
"""
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 0, done.stderr[-800:]
  assert done.stdout.strip() == "(2, 28, 28, 1)"


def test_tensorflow_imported_for_data_says_nothing():
  """TensorFlow only feeds data: its import through ae_jax must not print ahead of a command's
  own lines (the one-line errors). On CPUs with AVX-512 VNNI, TensorFlow 2.21 announced its
  oneDNN operations at import whatever TF_CPP_MIN_LOG_LEVEL said (on AVX2 CPUs it does not,
  so there this test passes either way)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  code = "import os; from ae_jax.data import pipeline; pipeline._tf(); print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"),
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 0, done.stderr[-800:]
  assert (done.stdout, done.stderr) == ("0\n", "")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=dict(env, TF_ENABLE_ONEDNN_OPTS="1"),
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.stdout == "1\n", done.stderr[-800:]  # a user's own setting is kept


def test_unknown_or_empty_splits_name_the_dataset_and_the_option(tiny_data):
  builder = data.get_builder("fashion_mnist", tiny_data[1])  # ours, from IDX files
  assert data.num_examples(builder, "test[:10]") == 10
  with pytest.raises(UserError, match="dataset 'fashion_mnist' has no split 'tets': set "
                                      r"--split to one of \['test', 'train'\]"):
    data.num_examples(builder, "tets", flag="--split")
  with pytest.raises(UserError, match="split 'test\\[:0\\]' of dataset 'fashion_mnist' has no "
                                      "examples: set --config.train_split / --config.eval_split"):
    data.num_examples(builder, "test[:0]")
  with pytest.raises(UserError, match=r"unknown dataset 'fashon_mnist'.*\(--dataset=\.\.\.\)"):
    data.get_builder("fashon_mnist", tiny_data[1], options="--")
