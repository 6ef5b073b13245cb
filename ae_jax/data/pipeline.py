"""Input pipelines: tfds sources (with an offline IDX fallback), on-the-fly noise, batching.

Two ways to feed the train step, both deterministic functions of (seed, epoch, step):
* `stream_epoch`: tf.data streams an epoch of batches (shuffle, batch, noise in the pipeline).
* on device: `load_images` holds the whole split in memory; `device_batch` gathers a batch
  by a permutation inside jit and `add_noise` draws its noise there (see train.py).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import functools
import json
import os
import socket
import sys
from typing import Iterator
from urllib.parse import urlparse

import jax
import jax.numpy as jnp
import numpy as np

from ae_jax.data import folder, idx
from ae_jax.core import progress
from ae_jax.core.errors import DiskError, UserError, describe, disk_errno
from ae_jax.core.files import atomic_path

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
# IDX folders whose dataset is known (Debian's packages): their files never stand in for
# another MNIST-format dataset (the default idx_dir would otherwise make "mnist" out of
# Fashion-MNIST's images).
_KNOWN_IDX_DIRS = {DEFAULT_IDX_DIR: "fashion_mnist"}
_PROBE_SECONDS = 3.0
# The versions of the project's own tfds builders, by builder name, known without tfds:
# `Source` trusts a record of a prepared dataset only when it names today's version.
_OUR_VERSIONS = {"idx_images": idx.VERSION, "folder_images": folder.VERSION}


@functools.cache
def _tf():
  """TensorFlow, imported on first use: the in-jit batching and noise below need none of it,
  so code that uses only those runs where TensorFlow is not installed (accelerator images).

  TensorFlow's oneDNN custom operations are off unless the user set TF_ENABLE_ONEDNN_OPTS:
  ae_jax runs no TensorFlow maths for them to speed up, and on CPUs with AVX-512 VNNI
  TensorFlow 2.21 announces them at import ("oneDNN custom operations are on", two lines
  per import) whatever TF_CPP_MIN_LOG_LEVEL says, ahead of a command's own output."""
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  # TensorFlow only feeds data: it must never take accelerator memory from JAX.
  tf.config.set_visible_devices([], "GPU")
  return tf


def _tfds():
  _tf()
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds


# ---------------------------------------------------------------------------- sources

def network_reachable(hosts: list[str], timeout: float = _PROBE_SECONDS) -> bool:
  """True if a TCP connection to port 443 of any host opens within `timeout` seconds."""
  def probe(host):
    try:
      socket.create_connection((host, 443), timeout=timeout).close()
      return True
    except OSError:
      return False
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(len(hosts), 1))
  futures = [pool.submit(probe, h) for h in hosts]
  try:
    done, _ = concurrent.futures.wait(futures, timeout=timeout + 1)
    return any(f.result() for f in done)
  finally:
    pool.shutdown(wait=False, cancel_futures=True)


def _download_hosts(builder) -> list[str]:
  hosts = {"storage.googleapis.com"}  # tfds' own mirror of prepared datasets
  try:
    hosts.update(urlparse(url).hostname for url in (builder.url_infos or {}))
  except Exception:  # builders without a checksums file: the mirror is all we know
    pass
  return sorted(h for h in hosts if h)[:4]


@contextlib.contextmanager
def _tfds_warnings_off():
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  before = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(before)


@contextlib.contextmanager
def _tfds_bars(enable: bool):
  """tfds' progress bars on or off (tfds draws them even into logs), then as they were."""
  tfds = _tfds()
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=import-outside-toplevel
  before = getattr(tqdm_utils, "_active", True)  # tfds has no getter for it
  tfds.display_progress_bar(before and enable)
  try:
    yield
  finally:
    tfds.display_progress_bar(before)


def _idx_count(idx_dir: str) -> int | None:
  """The images of both splits of an IDX folder, from the files' headers."""
  counts = [idx.num_items(idx.find_idx_file(idx_dir, images))
            for images, _ in idx.FILES.values()]
  return None if None in counts else sum(counts)


@contextlib.contextmanager
def _preparing(builder, total: int | None, dataset: str):
  """One progress line of the images a dataset prepared by one of our builders (IDX files,
  a folder) has written, in place of tfds' nested bars (splits, examples, shuffling)."""
  with _tfds_bars(False), progress.bar(total, f"preparing {dataset}", "image") as line:
    builder.on_example = line.update
    try:
      yield
    finally:
      builder.on_example = None


def _inside(path: str, folder: str) -> bool:
  folder = os.path.abspath(folder)
  return os.path.commonpath([os.path.abspath(path), folder]) == folder


def _idx_dir_holds_another(idx_dir: str | None, dataset: str) -> str | None:
  """The dataset a known IDX folder holds, when it is not `dataset`."""
  holds = _KNOWN_IDX_DIRS.get(os.path.realpath(idx_dir)) if idx_dir else None
  return holds if holds not in (None, dataset) else None


def get_builder(dataset: str, data_dir: str | None = None,
                idx_dir: str | None = DEFAULT_IDX_DIR, options: str = "--config.",
                dataset_fix: str | None = None, test_fraction: float = 0.1):
  """A prepared tfds builder for `dataset`, preparing it if it can be done here.

  `folder:DIR` is the images in folder DIR (ae_jax/data/folder.py; `test_fraction` of
  them held out for the test split where DIR has no train/ and test/), prepared by
  folder_builder.py into `data_dir` on first use and whenever the folder has changed.
  Otherwise, order: the dataset already prepared in `data_dir` (tfds' own builder, then ours);
  MNIST-format datasets from the IDX files in `idx_dir` (never a folder known to hold
  another dataset's files, such as the default, Fashion-MNIST's); a tfds download when the
  network answers. Otherwise raises `UserError` within seconds (tfds alone retries
  for minutes when offline). `options`: how the messages name the caller's options
  (`--config.` for launch.py's `--config.dataset`, `--config.data_dir`, ...; `--` for a
  tool's `--dataset`, `--data_dir`, `--idx_dir`); `dataset_fix`, the advice for an unknown
  `dataset` where it is not an option (a run's config.json names it).
  """
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  if data_dir and os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise UserError(f"data_dir {data_dir} is a file: give the folder where tfds keeps (or "
                    "should prepare) its datasets")
  with _tfds_warnings_off():  # tfds' notes on folders it passes over: not the user's concern
    if folder.is_folder(dataset):
      return _get_folder_builder(dataset, data_dir, test_fraction, options)
    return _get_builder(dataset, data_dir, idx_dir, options,
                        dataset_fix or f"use a tfds dataset name such as fashion_mnist or "
                                       f"mnist ({options}dataset=...)")


def _get_builder(dataset: str, data_dir: str | None, idx_dir: str | None, options: str,
                 dataset_fix: str):
  tfds = _tfds()
  from ae_jax.data import idx_builder  # pylint: disable=import-outside-toplevel  (imports tfds)
  try:
    builder = tfds.builder(dataset, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"unknown dataset {dataset!r}: {dataset_fix}") from None
  except Exception as e:  # e.g. a tfds builder whose module fails to import
    raise UserError(f"cannot open dataset {dataset!r} ({type(e).__name__}: {e})") from None
  if builder.is_prepared():
    return builder
  idx_dir_note = ""
  if dataset in {c.name for c in idx_builder.IdxImages.BUILDER_CONFIGS}:
    ours = idx_builder.IdxImages(config=dataset, data_dir=data_dir)
    if ours.is_prepared():
      return ours
    other = _idx_dir_holds_another(idx_dir, dataset)
    if other:
      idx_dir_note = (f"; {options}idx_dir {idx_dir} holds {other}'s IDX files, not "
                      f"{dataset}'s")
    elif idx.has_idx_files(idx_dir):
      try:
        with _preparing(ours, _idx_count(idx_dir), dataset):
          ours.download_and_prepare(
              download_config=tfds.download.DownloadConfig(manual_dir=idx_dir))
      except Exception as e:  # pylint: disable=broad-except  (tfds wraps errors in RuntimeError)
        # A full disk reaches here as an OSError, or, when tfds' writer fails to finish a
        # split, as RuntimeError('ResourceExhaustedError: Failed to finalize writing of
        # split ...: No space left on device'). Either way tfds has removed its
        # incomplete folder: nothing half-prepared is left, and a rerun prepares anew.
        if disk_errno(e):
          raise DiskError(f"the prepared {dataset} dataset", ours.data_dir_root, disk_errno(e),
                          f"{options}data_dir") from None
        if not isinstance(e, (ValueError, OSError, EOFError)):
          raise
        where = getattr(e, "filename", None)  # a file it could not write, not an IDX file
        if where and not _inside(str(where), idx_dir):
          raise UserError(f"cannot prepare {dataset} in {ours.data_dir_root} "
                          f"({describe(e, 160)}): give a writable {options}data_dir with "
                          "free space") from None
        raise UserError(f"the IDX files in {idx_dir} cannot be read ({describe(e, 160)}): "
                        "reinstall them (apt-get install "
                        f"--reinstall dataset-fashion-mnist) or point {options}idx_dir at "
                        "good ones") from None
      return ours
  if not network_reachable(_download_hosts(builder)):
    debian = ("; Debian: apt-get install dataset-fashion-mnist"
              if dataset == "fashion_mnist" else "")
    hint = (f" or put its four IDX files in a folder and set {options}idx_dir "
            f"(now {idx_dir!r}{debian})" if dataset in ("mnist", "fashion_mnist") else "")
    raise UserError(
        f"dataset {dataset!r} is not prepared in {builder.data_dir_root} and cannot be "
        f"downloaded (no network{idx_dir_note}): prepare it where there is network and "
        f"copy it there, or set {options}data_dir{hint}")
  try:
    with _tfds_bars(sys.stderr.isatty()):  # its download bars: on a terminal only
      builder.download_and_prepare()
  except Exception as e:  # pylint: disable=broad-except  (manual downloads, HTTP, disk full)
    if disk_errno(e):
      raise DiskError(f"the downloaded {dataset} dataset", builder.data_dir_root, disk_errno(e),
                      f"{options}data_dir") from None
    raise UserError(f"dataset {dataset!r} could not be downloaded and prepared in "
                    f"{builder.data_dir_root} ({describe(e, 300)}): fix that and "
                    f"rerun, or prepare it elsewhere and set {options}data_dir") from None
  return builder


def data_root(data_dir: str | None) -> str:
  """The tfds data_dir in use: `data_dir`, else $TFDS_DATA_DIR, else tfds' default."""
  return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR")
                            or "~/tensorflow_datasets")


def _folder_prepared(files: folder.Listing, data_dir: str | None) -> str:
  """Where the folder dataset `files` is (or would be) prepared."""
  return os.path.join(data_root(data_dir), "folder_images", files.config_name, folder.VERSION)


def _get_folder_builder(dataset: str, data_dir: str | None, test_fraction: float,
                        options: str):
  tfds = _tfds()
  from ae_jax.data import folder_builder  # pylint: disable=import-outside-toplevel  (tfds)
  files = folder.listing(folder.path_of(dataset), test_fraction)
  # A prepared copy says what the headers said: they are not read again.
  try:
    with open(os.path.join(_folder_prepared(files, data_dir), "metadata.json")) as f:
      about = json.load(f)
    config = folder_builder.FolderConfig(files=files, about=about)
  except (OSError, ValueError):
    config = folder_builder.FolderConfig.of(files)
  builder = folder_builder.FolderImages(config=config, data_dir=data_dir)
  if builder.is_prepared():
    return builder
  total = sum(len(v) for v in files.files.values())
  try:
    with _preparing(builder, total, dataset):
      builder.download_and_prepare()
  except (ValueError, OSError) as e:  # the images' own faults are UserErrors already
    if disk_errno(e):
      raise DiskError(f"the prepared {dataset} dataset", builder.data_dir_root, disk_errno(e),
                      f"{options}data_dir") from None
    raise UserError(f"cannot prepare {dataset} in {builder.data_dir_root} "
                    f"({describe(e, 160)}): give a writable {options}data_dir with free "
                    "space") from None
  return builder


def image_shape(builder) -> tuple[int | None, int | None, int]:
  """(H, W, C) of the dataset's uint8 `image` feature, H and W None where its images have
  several sizes; `UserError` if it has none."""
  try:
    feature = builder.info.features["image"]
  except (KeyError, TypeError):
    feature = None
  shape = tuple(getattr(feature, "shape", ()) or ())
  if (feature is None or len(shape) != 3 or shape[2] is None
      or feature.np_dtype != np.uint8):
    raise UserError(f"dataset {dataset_name(builder)!r} has no uint8 'image' feature with a "
                    f"fixed number of channels (got {feature!r}): choose an image dataset "
                    "such as fashion_mnist")
  return shape


def dataset_name(builder) -> str:
  """The name a user gave for `builder`'s dataset (ours, from IDX files, is a config of
  the tfds builder `idx_images`; a folder's is `folder:DIR`)."""
  from ae_jax.data import folder_builder, idx_builder  # pylint: disable=import-outside-toplevel
  if isinstance(builder, idx_builder.IdxImages):
    return builder.builder_config.name
  if isinstance(builder, folder_builder.FolderImages):
    return folder.PREFIX + builder.builder_config.files.root
  return builder.name


def num_examples(builder, split: str,
                 flag: str = "--config.train_split / --config.eval_split") -> int:
  """Examples in `split` (a name or a tfds slice such as 'test[:100]'); an unknown or empty
  split is a `UserError` naming `flag`, the option that chose it."""
  try:
    n = builder.info.splits[split].num_examples
  except (KeyError, ValueError):
    raise UserError(f"dataset {dataset_name(builder)!r} has no split {split!r}: set {flag} "
                    f"to one of {sorted(builder.info.splits)}") from None
  if n == 0:
    raise UserError(f"split {split!r} of dataset {dataset_name(builder)!r} has no examples: "
                    f"set {flag} to a split or slice that has some")
  return n


def load_images(builder, split: str, max_examples: int | None = None
                ) -> np.ndarray | list[np.ndarray]:
  """The split's images, in the dataset's order: one uint8 array [N, H, W, C], or, where
  they have several sizes, a list of uint8 arrays [H_i, W_i, C] (they cannot be stacked).

  Decoding a split through tfds takes seconds (60k PNG-encoded images: ~4 s here), so the
  decoded images are cached as `<split>.images.npy` (several sizes: `.npz`, their pixels
  end to end and their sizes) beside the prepared dataset and read back in milliseconds;
  a read-only data_dir simply goes without the cache, and a full one with a one-line
  warning.
  """
  n = num_examples(builder, split)  # an unknown split fails here, with the fix
  ragged = None in image_shape(builder)[:2]
  cache = _cache_path(builder.data_dir, split, ragged)
  images = _read_cache(cache, n)
  if images is None:  # no cache, or a stale or foreign one
    if ragged:
      ds = builder.as_dataset(split=split, shuffle_files=False).map(lambda ex: ex["image"])
      images = list(_tfds().as_numpy(ds))
      pixels, sizes = _ragged_to_flat(images)
      _write_atomically(cache, "wb", lambda f: np.savez(f, pixels=pixels, sizes=sizes))
    else:
      ds = builder.as_dataset(split=split, shuffle_files=False, batch_size=-1)
      images = _tfds().as_numpy(ds)["image"]
      save_cache(cache, images)
  return images[:max_examples] if max_examples else images


def _cache_path(data_dir, split: str, ragged: bool = False) -> str:
  return os.path.join(os.fspath(data_dir), f"{split}.images.{'npz' if ragged else 'npy'}")


def _ragged_to_flat(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """(their pixels end to end, their shapes [N, 3]) of images of several sizes."""
  shapes = np.array([np.shape(im) for im in images], np.int64).reshape(len(images), 3)
  pixels = (np.concatenate([np.asarray(im).reshape(-1) for im in images]) if len(images)
            else np.zeros(0, np.uint8))
  return pixels, shapes


def _read_cache(path: str, n: int) -> np.ndarray | list[np.ndarray] | None:
  """The cached split at `path` if it holds `n` images, else None."""
  try:
    if path.endswith(".npz"):
      with np.load(path) as cached:
        pixels, sizes = cached["pixels"], cached["sizes"]
      ends = np.cumsum(np.prod(sizes, axis=1))
      images = [p.reshape(s) for p, s in zip(np.split(pixels, ends[:-1]), sizes)]
      return images if len(images) == n and (not n or ends[-1] == len(pixels)) else None
    images = np.load(path)
  except (OSError, ValueError, KeyError):
    return None
  return images if len(images) == n else None


def save_cache(path: str, images: np.ndarray) -> None:
  """Writes the decoded split `images` to the cache file `path` (`_write_atomically`)."""
  _write_atomically(path, "wb", lambda f: np.save(_Stream(f), images))


class _Stream:
  """A file numpy writes with `write`: to a real file it writes with `ndarray.tofile`,
  whose error on a full disk has no errno ('401408 requested and 0 written'), so the
  cache was silently left out where a warning says why."""

  def __init__(self, f):
    self.write = f.write


def _write_atomically(path: str, mode: str, write) -> None:
  """`write(file)` to a temporary file renamed to `path` (`files.atomic_path`): concurrent
  readers, and a run stopped half-way, see the whole file or none. An unwritable folder
  (a read-only data_dir) just goes without it, and a full disk with a warning: the file
  only saves time, so the command goes on."""
  try:
    with atomic_path(path) as tmp, open(tmp, mode) as f:
      write(f)
  except OSError as e:
    if disk_errno(e) not in (None, errno.EROFS):
      print(f"warning: cannot write {os.path.basename(path)} to {os.path.dirname(path)}: "
            f"{os.strerror(disk_errno(e))}: going on without it (free space there to have "
            "it)", file=sys.stderr)


# ---------------------------------------------------------------------------- sources for runs

class Source:
  """A prepared dataset as a training run needs it: image shape, split sizes, whole splits.

  The first run opens it through tfds (`get_builder`) and records what it found in
  `<tfds data_dir>/ae_jax_prepared/<dataset>.v2.json` (a folder's: `<its config
  name>.v2.json`, the folder's fingerprint in it); later runs that only need whole splits
  already decoded (the device pipeline) read that record and the arrays directly, without
  importing TensorFlow or tfds (~7 s and ~500 MB here). Anything the record cannot answer
  (another split, a missing cache, the tf.data stream) opens tfds.
  The record names the builder and its version: one of an earlier version of the
  project's own builders is not trusted. (Records without them, `<dataset>.json`, were
  written before the splits kept their files' order; code of that time still reads them,
  so they are left alone rather than overwritten.)
  """

  def __init__(self, dataset: str, data_dir: str | None = None,
               idx_dir: str | None = DEFAULT_IDX_DIR, splits: tuple[str, ...] = (),
               test_fraction: float = 0.1):
    self.name = dataset
    self._args = (dataset, data_dir, idx_dir, "--config.", None, test_fraction)
    key = dataset
    if folder.is_folder(dataset):  # the files' names, sizes and times: no image is opened
      key = folder.listing(folder.path_of(dataset), test_fraction).config_name
    self._record_path = os.path.join(data_root(data_dir), "ae_jax_prepared", f"{key}.v2.json")
    self._builder = None
    self._record = self._read_record(splits)
    if self._record is None:
      self._record = self._write_record()

  def _read_record(self, splits) -> dict | None:
    try:
      with open(self._record_path) as f:
        record = json.load(f)
      ragged = None in record["image_shape"][:2]
      ok = all(s in record["splits"]
               and os.path.exists(_cache_path(record["data_dir"], s, ragged)) for s in splits)
      # A record of another version of our own builders is not today's dataset.
      ours = _OUR_VERSIONS.get(record.get("builder"))
      ok = ok and ours in (None, record["version"])
      return record if ok and splits else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
      return None

  def _write_record(self) -> dict:
    builder = self.builder
    record = {"data_dir": os.fspath(builder.data_dir), "image_shape": list(image_shape(builder)),
              "splits": {k: v.num_examples for k, v in builder.info.splits.items()},
              "builder": builder.name, "version": str(builder.version)}
    metadata = builder.info.metadata or {}
    for key in ("smallest", "pixels"):  # a folder's: what its images' headers said
      if key in metadata:
        record[key] = metadata[key]
    try:
      os.makedirs(os.path.dirname(self._record_path), exist_ok=True)
    except OSError:  # a read-only data_dir: every run opens tfds
      return record
    _write_atomically(self._record_path, "w", lambda f: json.dump(record, f))
    return record

  @property
  def builder(self):
    """The tfds builder (opened on first use)."""
    if self._builder is None:
      self._builder = get_builder(*self._args)
    return self._builder

  @property
  def image_shape(self) -> tuple[int | None, int | None, int]:
    """(H, W, C); H and W None where the images have several sizes."""
    return tuple(self._record["image_shape"])

  def num_examples(self, split: str) -> int:
    if split in self._record["splits"]:
      return self._record["splits"][split]
    return num_examples(self.builder, split)

  def smallest(self, split: str) -> tuple[int, int, str] | None:
    """(height, width, file) of the split's image whose shorter side is shortest, where the
    dataset says (a folder's), else None."""
    found = self._record.get("smallest", {}).get(split)
    return tuple(found) if found else None

  def megabytes(self, split: str) -> float | None:
    """The split's decoded pixels in MiB, where known without decoding them (one image
    size, or a folder's headers), else None."""
    if None not in self.image_shape:
      return self.num_examples(split) * int(np.prod(self.image_shape)) / 2**20
    pixels = self._record.get("pixels", {}).get(split)
    return None if pixels is None else pixels / 2**20

  def load_images(self, split: str, max_examples: int | None = None
                  ) -> np.ndarray | list[np.ndarray]:
    if self._builder is None and split in self._record["splits"]:
      images = _read_cache(_cache_path(self._record["data_dir"], split,
                                       None in self.image_shape[:2]),
                           self._record["splits"][split])
      if images is not None:
        return images[:max_examples] if max_examples else images
    return load_images(self.builder, split, max_examples)


# ---------------------------------------------------------------------------- noise

def add_noise(key: jax.Array, clean: jax.Array, loc: float, scale: float) -> jax.Array:
  """clean + N(loc, scale^2), clipped to [0, 1]. Identity when scale == 0.

  The noise is drawn for the images flattened to [B, H*W*C]: the same numbers, bit for bit,
  as drawn in the image shape (jax.random's counters follow the row-major index), but
  XLA:CPU vectorizes the random-number loop along a 784-wide last axis instead of a 1-wide
  one: the denoise train step compiles ~0.5 s faster (its LLVM code 2.6 -> 2.0 MB) and
  runs ~1% faster (benchmarks/noise_forms.py, removed; read it at commit 83c9b83).
  """
  if scale == 0:
    return clean
  flat = clean.reshape(clean.shape[0], -1)
  noise = loc + scale * jax.random.normal(key, flat.shape, flat.dtype)
  return jnp.clip(flat + noise, 0.0, 1.0).reshape(clean.shape)


def _add_noise_tf(clean, step, seed: int, loc: float, scale: float):
  if scale == 0:
    return clean
  tf = _tf()
  noise = tf.random.stateless_normal(tf.shape(clean), seed=tf.stack([seed, step]),
                                     mean=loc, stddev=scale)
  return tf.clip_by_value(clean + noise, 0.0, 1.0)


# ---------------------------------------------------------------------------- batches

def device_batch(images_u8: jax.Array, perm: jax.Array, i: jax.Array,
                 batch_size: int) -> jax.Array:
  """Batch `i` of an epoch whose order is `perm`, as float32 in [0, 1] (for use in jit).

  Gathers whole rows of the images flattened to [N, H*W*C] (one 784-byte row per index
  rather than a [1, 28, 28, 1] slice): XLA:CPU's gather and conversion then vectorize
  (with `metrics._flat`, the dense step is ~12% faster: benchmarks/dense_variants.py,
  removed; read it at commit 83c9b83).
  """
  idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
  flat = images_u8.reshape(images_u8.shape[0], -1)
  return (flat[idx].astype(jnp.float32) / 255.0).reshape(batch_size, *images_u8.shape[1:])


def flat_images(images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(pixels, offsets, sizes) of images of any sizes (an array [N, H, W, C] or a list of
  [H_i, W_i, C]) for `device_crops`: their uint8 pixels end to end, where each starts
  (int32 [N]) and its (height, width) (int32 [N, 2]). No padding: a set of photographs
  takes the memory of its pixels, not N times the largest."""
  if isinstance(images, np.ndarray):  # one size: already end to end
    pixels, shapes = images.reshape(-1), np.tile(images.shape[1:], (len(images), 1))
  else:
    pixels, shapes = _ragged_to_flat(images)
  sizes = shapes.prod(axis=1)
  if sizes.sum() >= 2**31:  # int32 indices inside jit
    raise ValueError(f"{sizes.sum()} bytes of pixels: over the 2 GiB the device crops index")
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
  return pixels, offsets, shapes[:, :2].astype(np.int32)


def device_crops(pixels_u8: jax.Array, offsets: jax.Array, sizes: jax.Array, perm: jax.Array,
                 i: jax.Array, batch_size: int, crop: int, channels: int,
                 key: jax.Array) -> jax.Array:
  """Batch `i` of an epoch whose order is `perm`, each image a random crop x crop window
  of it (offsets drawn from `key`: a function of (seed, step), for exact resumes), as
  float32 in [0, 1] (for use in jit). The images are `flat_images`'s: one gather reads
  the crops' pixels straight from them."""
  idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
  hw = sizes[idx]
  ky, kx = jax.random.split(key)
  top = jax.random.randint(ky, (batch_size,), 0, hw[:, 0] - crop + 1)
  left = jax.random.randint(kx, (batch_size,), 0, hw[:, 1] - crop + 1)
  r = jnp.arange(crop)
  rows = (top[:, None] + r) * hw[:, 1:2]  # [B, crop]: where each row of the crop starts
  cols = left[:, None] + r  # [B, crop]
  at = ((offsets[idx, None, None] + (rows[:, :, None] + cols[:, None, :]) * channels)[..., None]
        + jnp.arange(channels))
  return pixels_u8[at].astype(jnp.float32) / 255.0


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The example order of `epoch` (int32): a function of (seed, epoch) only, for exact
  resumes, and the same on every process and platform (numpy's PCG64).

  Drawn on the host: ~2 ms for 60,000 examples, where `jax.random.permutation` (two sort
  rounds) took 30-45 ms per epoch on XLA:CPU plus a ~0.4 s compile in the first epoch.
  """
  return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def stream_epoch(builder, split: str, *, batch_size: int, steps: int, epoch: int, seed: int,
                 loc: float, scale: float, first_step: int, start: int = 0,
                 num_shards: int = 1, shard: int = 0,
                 crop: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Streams (noisy, clean) float32 batches of one epoch through tf.data.

  The order comes from a shuffle seeded by (seed, epoch), the noise of batch i from
  (seed, first_step + i); `start` skips the batches already trained on (resume). With
  several processes, each gets rows [shard * b, (shard + 1) * b) of every global batch
  (b = batch_size / num_shards): together they see exactly the one-process batches.
  `crop`: each image a random crop x crop window, drawn from (seed, the example's place
  in the run), as the noise is.
  """
  tf = _tf()
  ds = builder.as_dataset(split=split, shuffle_files=False)
  n = num_examples(builder, split)
  if crop:
    channels = image_shape(builder)[2]
    ds = ds.map(lambda ex: ex["image"]).shuffle(
        min(n, 10_000), seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
    # Seeds [seed, -1 - k] for the k-th example of the run: never the noise's [seed, step].
    ds = ds.enumerate().map(
        lambda k, im: tf.cast(tf.image.stateless_random_crop(
            im, [crop, crop, channels],
            seed=tf.stack([tf.cast(seed, tf.int64), -1 - (first_step * batch_size + k)])),
            tf.float32) / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    ds = ds.map(lambda ex: tf.cast(ex["image"], tf.float32) / 255.0,
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.shuffle(min(n, 10_000), seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
  ds = ds.batch(batch_size, drop_remainder=True).take(steps).enumerate().skip(start)
  ds = ds.map(lambda i, x: (_add_noise_tf(x, first_step + tf.cast(i, tf.int32), seed, loc, scale),
                            x), num_parallel_calls=tf.data.AUTOTUNE)
  if num_shards > 1:
    local = batch_size // num_shards
    ds = ds.map(lambda noisy, clean: (noisy[shard * local:(shard + 1) * local],
                                      clean[shard * local:(shard + 1) * local]))
  return _tfds().as_numpy(ds.prefetch(tf.data.AUTOTUNE))


def eval_batches(images_u8: np.ndarray,
                 batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
  """(clean float32 batch, mask, index) over a whole split, the last batch padded (mask 0).

  The evaluation noise is drawn inside the eval step from (seed, index).
  """
  n = len(images_u8)
  for b, start in enumerate(range(0, n, batch_size)):
    chunk = images_u8[start:start + batch_size]
    mask = np.ones(batch_size, np.float32)
    if len(chunk) < batch_size:
      mask[len(chunk):] = 0
      chunk = np.concatenate([chunk, np.zeros((batch_size - len(chunk),) + chunk.shape[1:],
                                              chunk.dtype)])
    yield chunk.astype(np.float32) / 255.0, mask, b
