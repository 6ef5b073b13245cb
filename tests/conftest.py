"""Shared fixtures: a tiny real IDX dataset prepared by the project's own tfds builder."""
import gzip
import json
import os
import shutil
import signal
import struct
import sys
import tempfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Small models compile much faster without XLA's heavier passes, and the many short runs
# of the same models (several in subprocesses: launch.py, kills, multi-process) share
# one persistent compilation cache. These variables reach the subprocesses too.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
_OWN_CACHE = None  # the suite's own cache, removed at the end (a user's stays)
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _OWN_CACHE = tempfile.mkdtemp(prefix="ae_jax_jit_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# XLA:CPU's older loop emitters compile the suite's many small programs ~30 % faster
# (tests/test_models.py, test_registry.py and test_gdn.py: 127 -> 89 s); the results differ
# from the default emitters' by float rounding only, and every comparison in the suite is
# between runs made alike. On the jaxlib versions where that was measured (xla_flags.py).
from ae_jax.core import xla_flags  # pylint: disable=wrong-import-position  (before JAX starts)

SUITE_XLA_FLAGS = " ".join(f"--{k}={str(v).lower()}"
                           for k, v in xla_flags.quick_compile_cpu_options().items())
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SUITE_XLA_FLAGS}".strip()


def real_run_env(**extra) -> dict:
  """os.environ for a subprocess that must compile as real runs do: without the suite's
  JAX_DISABLE_MOST_OPTIMIZATIONS and quicker emitters (the persistent cache stays)."""
  env = {k: v for k, v in os.environ.items() if k != "JAX_DISABLE_MOST_OPTIMIZATIONS"}
  flags = env.get("XLA_FLAGS", "").replace(SUITE_XLA_FLAGS, "").strip() if SUITE_XLA_FLAGS \
      else env.get("XLA_FLAGS", "")
  return {**env, "XLA_FLAGS": flags, **extra}

import jax  # pylint: disable=wrong-import-position

# Ctrl-C is Python's KeyboardInterrupt in every test however pytest was started: a shell's
# background job (`./run.sh test &`) starts with SIGINT ignored, and the tests of Ctrl-C
# would then see nothing arrive.
signal.signal(signal.SIGINT, signal.default_int_handler)

jax.config.update("jax_disable_most_optimizations", True)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def config_from_flags(config_file: str, flags) -> "ml_collections.ConfigDict":
  """The config `python launch.py --config CONFIG_FILE[:arg] FLAGS...` trains, for runs a
  test trains in its own process: the same run without a process's start and imports."""
  import importlib  # pylint: disable=import-outside-toplevel
  path, _, arg = config_file.partition(":")
  module = importlib.import_module(path[:-3].replace("/", "."))
  return apply_flags(module.get_config(arg) if arg else module.get_config(), flags)


def apply_flags(config, flags):
  """`config` with each flag --config.a.b=value set (a Python literal, or else a string);
  other flags (--config FILE, --workdir DIR) are skipped."""
  import ast  # pylint: disable=import-outside-toplevel
  for flag in flags:
    if not flag.startswith("--config."):
      continue
    name, value = flag[len("--config."):].split("=", 1)
    *groups, leaf = name.split(".")
    node = config
    for g in groups:
      node = node[g]
    try:
      node[leaf] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      node[leaf] = value  # a path, a name
  return config


def run_compress(argv, own_process: bool = True):
  """`python -m ae_jax.compress ARGV` as a subprocess.CompletedProcess: in a process of its
  own, or (own_process False) through the same entry point, `compress_cli.main`, in this
  one, which spares the imports."""
  import contextlib  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  argv = [str(a) for a in argv]
  if own_process:
    return subprocess.run([sys.executable, "-m", "ae_jax.compress", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  from ae_jax.compression import compress_cli  # pylint: disable=import-outside-toplevel
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      rc = compress_cli.main(argv)
    except SystemExit as e:  # argparse's way out
      rc = e.code
  return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as a gzipped IDX file (the MNIST format)."""
  header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
      struct.pack(">I", d) for d in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """n 28x28 images of bright rectangles (learnable structure), and labels."""
  rng = np.random.default_rng(seed)
  images = np.zeros((n, 28, 28), np.uint8)
  for img in images:
    r0, c0 = rng.integers(2, 14, size=2)
    h, w = rng.integers(6, 13, size=2)
    img[r0:r0 + h, c0:c0 + w] = rng.integers(150, 256)
  return images, rng.integers(0, 10, size=n).astype(np.uint8)


def write_idx_folder(folder: str, n_train: int = 512, n_test: int = 128) -> str:
  os.makedirs(folder, exist_ok=True)
  for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
    images, labels = make_images(n, seed)
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)
  return folder


def write_png_folder(folder: str, images: np.ndarray, names=None) -> str:
  """Writes uint8 images [N, H, W(, C)] as PNGs named 00000.png, ... (or `names`)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  os.makedirs(folder, exist_ok=True)
  for i, im in enumerate(images):
    im = np.asarray(im)
    Image.fromarray(im[..., 0] if im.ndim == 3 and im.shape[2] == 1 else im).save(
        os.path.join(folder, (names[i] if names else f"{i:05d}") + ".png"))
  return folder


def write_image_folder(root: str, kind: str = "ok") -> str:
  """A small folder dataset (train/ and test/ of 28x28 grayscale PNGs), or one with the
  fault `kind` names: 'empty', 'text_file', 'garbage' (a .png that is no image),
  'truncated' (a PNG cut short), 'sizes' (several sizes), 'mixed' (an RGB image among
  grayscale ones), 'alpha' (an RGBA image), 'few' (3 images, no splits)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  os.makedirs(root, exist_ok=True)
  if kind == "empty":
    return root
  if kind == "few":
    write_png_folder(root, make_images(3, seed=2)[0])
    return root
  write_png_folder(os.path.join(root, "train"), make_images(40, seed=0)[0])
  write_png_folder(os.path.join(root, "test"), make_images(10, seed=1)[0])
  bad = os.path.join(root, "train", "00003.png")
  if kind == "text_file":
    with open(os.path.join(root, "train", "notes.txt"), "w") as f:
      f.write("my notes\n")
  elif kind == "garbage":
    with open(bad, "wb") as f:
      f.write(b"this is no PNG at all")
  elif kind == "truncated":
    with open(bad, "rb") as f:
      blob = f.read()
    with open(bad, "wb") as f:
      f.write(blob[:len(blob) // 2])
  elif kind == "sizes":
    Image.fromarray(np.zeros((30, 20), np.uint8)).save(bad)
  elif kind == "mixed":
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(bad)
  elif kind == "alpha":
    Image.fromarray(np.zeros((28, 28, 4), np.uint8)).save(bad)
  return root


def set_model(config, kind: str, latent_dim: int | None = None) -> None:
  """Makes `config` train the lecture's 'dense' or 'conv' autoencoder (latent_dim: the
  dense code size; default the config's own)."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  from ae_jax.training import config_lib  # pylint: disable=import-outside-toplevel
  if latent_dim is None:
    latent_dim = config.encoder.get("latent_dim", 64)
  for group, spec in config_lib.lecture_model(kind, latent_dim).items():
    config[group] = ml_collections.ConfigDict(spec)


def read_tensorboard(logdir: str) -> tuple[dict, dict]:
  """What TensorBoard shows of a run's event files, read by its own EventAccumulator
  (which honours a resumed run's SessionLog.START): ({tag: [(step, value), ...]},
  {step: image as an array})."""
  # pylint: disable=import-outside-toplevel
  import io
  from PIL import Image
  from tensorboard.backend.event_processing import event_accumulator as ea
  acc = ea.EventAccumulator(logdir, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
  acc.Reload()
  tags = acc.Tags()
  scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags["scalars"]}
  images = {e.step: np.asarray(Image.open(io.BytesIO(e.encoded_image_string)))
            for tag in tags["images"] for e in acc.Images(tag)}
  return scalars, images


def scripted_stop(monkeypatch, step) -> None:
  """Training runs started from now on get a stop request, as from SIGTERM, once the jit
  call that ends at `step` has run (the run saves that step and raises train.Interrupted);
  `step` None: no stop. Replaces train._StopRequests for the test (device pipeline)."""
  from ae_jax.training import signals, train  # pylint: disable=import-outside-toplevel

  class Scripted(signals.StopRequests):  # the real one, not a script set earlier
    def __enter__(self):
      super().__enter__()
      wrapped = train.steps.device_train_steps

      def call(state, images, perm, first, *, num_steps, **kw):
        end = int(state.step) + num_steps  # read before the call: it donates `state`
        out = wrapped(state, images, perm, first, num_steps=num_steps, **kw)
        if end == step:
          self.signum = signal.SIGTERM
        return out

      self._patch = pytest.MonkeyPatch()
      self._patch.setattr(train.steps, "device_train_steps", call)
      return self

    def __exit__(self, *exc):
      self._patch.undo()
      return super().__exit__(*exc)

  monkeypatch.setattr(train, "_StopRequests", Scripted)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
  """(idx_dir, data_dir) of a 512/128-image dataset prepared as 'fashion_mnist'."""
  root = tmp_path_factory.mktemp("tiny")
  idx_dir = write_idx_folder(str(root / "idx"))
  data_dir = str(root / "tfds")
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  data.get_builder("fashion_mnist", data_dir, idx_dir)  # prepare once for the session
  return idx_dir, data_dir


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory):
  """A tfds data_dir holding Debian's real Fashion-MNIST, prepared once for the session
  (~12 s; needs `apt-get install dataset-fashion-mnist`)."""
  from ae_jax.data import pipeline as data  # pylint: disable=import-outside-toplevel
  assert data.idx.has_idx_files(FASHION_DIR), (
      f"{FASHION_DIR} is missing: apt-get install dataset-fashion-mnist")
  data_dir = str(tmp_path_factory.mktemp("real") / "tfds")
  data.get_builder("fashion_mnist", data_dir, FASHION_DIR)
  return data_dir


@pytest.fixture(scope="session")
def cifar_like_dir(tmp_path_factory):
  """A tfds data_dir holding 'cifar_like': CIFAR-10's image shape, 128/64 images."""
  import cifar_like  # pylint: disable=import-outside-toplevel  (imports tfds)
  data_dir = str(tmp_path_factory.mktemp("cifar_like") / "tfds")
  cifar_like.prepare(data_dir)
  return data_dir


@pytest.fixture
def tiny_config(tiny_data):
  """A dense config on the tiny dataset: 2 epochs of 4 steps, batch 32."""
  from configs import dense  # pylint: disable=import-outside-toplevel
  config = dense.get_config()
  config.idx_dir, config.data_dir = tiny_data
  config.batch_size = 32
  config.steps_per_epoch = 4
  config.num_epochs = 2
  config.eval_batch_size = 50
  config.num_images = 4
  config.progress_bar = False
  return config


# The fast tier (`./run.sh test --fast`, or `pytest -m "not slow"`) for the edit loop leaves
# out the modules that train runs or run the tools end to end (the full suite, which CI
# runs, keeps them all), and the few slow tests of otherwise quick modules.
SLOW_MODULES = {
    "test_benchmarks", "test_checkpoint", "test_codec", "test_compile_cache", "test_compress",
    "test_errors", "test_evaluation", "test_families", "test_full_disk", "test_invariants",
    "test_launch", "test_legacy", "test_notebook", "test_parallel", "test_progress",
    "test_rd_compare", "test_readme_example", "test_real_data", "test_resume", "test_setup",
    "test_train", "test_vae", "test_vq", "test_hyperprior", "test_folder", "test_faults",
    "test_frechet",
}
SLOW_TESTS = {
    "test_the_general_conv_net_trains_on_cifar_shaped_images",
    "test_the_general_conv_net_takes_any_image_size",
    "test_bfloat16_computes_in_bfloat16_and_keeps_float32_parameters",
    "test_convnet_equals_the_literal_lax_conv_forms_values_and_gradients",
    "test_speed_alternates_ae_jax_and_the_peer_and_tabulates_seconds_per_step",
    "test_the_real_peer_trains_and_codes_in_its_own_venv",
}



# Longest files first. `./run.sh test` keeps a file on one worker (--dist loadfile), and
# xdist by default hands out the files with the most tests first, so the long files of few
# tests (test_resume, test_parallel, test_real_data, ...) came last and one worker ran on
# alone while the other had finished. tests/file_seconds.json holds each file's seconds in
# a full run (setup, call and teardown; only their order counts), rewritten by
# `./run.sh test --file_seconds tests/file_seconds.json`; run.sh turns xdist's own order
# off (--no-loadscope-reorder); files not listed go last.
FILE_SECONDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file_seconds.json")
_SECONDS: dict[str, float] = {}


def _file_of(nodeid: str) -> str:
  return os.path.basename(nodeid.split("::")[0])


def pytest_addoption(parser):
  parser.addoption("--file_seconds", metavar="PATH",
                   help="write each test file's seconds in this run as JSON (ordering)")


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
  for item in items:
    module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
    if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
      item.add_marker(pytest.mark.slow)
  try:
    with open(FILE_SECONDS) as f:
      seconds = json.load(f)
  except (OSError, ValueError):
    seconds = {}
  items.sort(key=lambda item: -seconds.get(_file_of(item.nodeid), 0.0))  # stable


def pytest_runtest_logreport(report):
  name = _file_of(report.nodeid)
  _SECONDS[name] = _SECONDS.get(name, 0.0) + report.duration


def pytest_sessionfinish(session):
  """Writes --file_seconds (on xdist's controller, which sees every worker's reports)."""
  path = session.config.getoption("file_seconds")
  if not path or hasattr(session.config, "workerinput") or not _SECONDS:
    return
  ranked = dict(sorted(((k, round(v, 1)) for k, v in _SECONDS.items()), key=lambda kv: -kv[1]))
  with open(path + ".tmp", "w") as f:
    json.dump(ranked, f, indent=1)
    f.write("\n")
  os.replace(path + ".tmp", path)


def pytest_unconfigure(config):  # pylint: disable=unused-argument
  """Removes the suite's own compilation cache (a user's JAX_COMPILATION_CACHE_DIR stays)."""
  if _OWN_CACHE:
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)
