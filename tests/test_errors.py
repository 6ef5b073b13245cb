"""The catalogue of bad inputs (docs/errors.md): each row run through launch.py's own
`parse_flags` and `main`, in this process for speed. Every row must exit 2 with one
`error: ...` line naming the fix, raise no other exception (a user never sees a
traceback), and leave any workdir it touched as it was.

Regenerate the table after changing a message:
  AE_JAX_WRITE_ERRORS_DOC=1 python -m pytest tests/test_errors.py
"""
import contextlib
import glob
import hashlib
import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr

import pytest
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import REPO  # pylint: disable=wrong-import-position

sys.path.insert(0, REPO)
import launch  # pylint: disable=wrong-import-position
from ae_jax.data import pipeline as data  # pylint: disable=wrong-import-position

DOC = os.path.join(REPO, "docs", "errors.md")
TINY = ["--config.batch_size=32", "--config.steps_per_epoch=2", "--config.num_epochs=1",
        "--config.eval_examples=64", "--config.progress_bar=False"]

# (what the user did, launch.py arguments, setup of the workdir, part of the message)
# In arguments: {data}/{idx} = a prepared tiny dataset, {run} = the workdir, {tmp} = a
# scratch folder.
CASES = [
    ("no --config", None, None, "--config must have a value"),
    ("config file missing", ["--config", "configs/nope.py"], None, "cannot be read"),
    ("config file with a syntax error", ["--config", "{tmp}/syntax.py"], "syntax",
     "syntax error at line 1"),
    ("config file that raises", ["--config", "{tmp}/raises.py"], "raises",
     "ZeroDivisionError"),
    ("config file without get_config", ["--config", "{tmp}/empty.py"], "empty",
     "defines no get_config()"),
    ("config file whose get_config reads a missing file", ["--config", "{tmp}/reads.py"],
     "reads", "No such file or directory: '/no/such.json'"),
    ("config file given an argument it does not take", ["--config", "configs/dense.py:foo"],
     None, "takes 0 positional arguments but 1 was given): fix the file, or give the path alone"),
    ("unknown config field", ["--config.encoder.latnet_dim=8"], None,
     "unknown config field 'latnet_dim' (did you mean 'latent_dim'?)"),
    ("unknown nested field", ["--config.noise.mean=0.5"], None, "unknown config field 'mean'"),
    ("unknown flag", ["--wrkdir=x"], None, "Unknown command line flag 'wrkdir'"),
    ("stray argument", ["dense"], None, "unexpected arguments ['dense']"),
    ("integer field given text", ["--config.batch_size=abc"], None, "--config.batch_size=abc"),
    ("float field given text", ["--config.learning_rate=fast"], None,
     "--config.learning_rate=fast"),
    ("batch_size 0", ["--config.batch_size=0"], None, "batch_size=0: it must be a positive"),
    ("negative batch_size", ["--config.batch_size=-8"], None, "batch_size=-8"),
    ("latent_dim 0", ["--config.encoder.latent_dim=0"], None, "encoder.latent_dim=0"),
    ("num_epochs 0", ["--config.num_epochs=0"], None, "num_epochs=0"),
    ("learning_rate 0", ["--config.learning_rate=0"], None, "learning_rate=0.0"),
    ("learning_rate nan", ["--config.learning_rate=nan"], None, "learning_rate=nan"),
    ("negative noise scale", ["--config.noise.scale=-0.1"], None, "noise.scale=-0.1"),
    ("infinite noise mean", ["--config.noise.loc=inf"], None, "noise.loc=inf"),
    ("unknown loss", ["--config.loss=hinge"], None, "loss='hinge': it must be one of"),
    ("unknown encoder", ["--config.encoder.name=gan"], None, "unknown encoder 'gan'"),
    ("encoder field of another module", ["--config.encoder.name=conv",
                                         "--config.encoder.latent_dim=8"], None,
     "unknown config field encoder.latent_dim: encoder 'conv' takes no fields"),
    ("a user's module that cannot be imported", ["--config.encoder.name=my_models:Wide"], None,
     "cannot import my_models"),
    ("a user's module that raises while importing", ["--config.encoder.name=boom_models:Enc"],
     "boom", "/boom_models.py:3 (raise RuntimeError(\"boom\")): fix it there"),
    ("decoder that cannot take the encoder's code", ["--config.decoder.name=conv"], None,
     "decoder 'conv' cannot take the code of encoder 'dense', shape (64,)"),
    ("decoder whose images are not the dataset's shape",
     ["--config.decoder.name=mlp", "--config.decoder.image_shape=(14,14,1)"], None,
     "decoder 'mlp' turns the code (64,) of encoder 'dense' into (14, 14, 1), not the shape of "
     "the fashion_mnist images, (28, 28, 1): change the decoder's fields"),
    ("general conv net with too few decoder stages", ["--config", "configs/conv_wide.py",
                                                      "--config.decoder.features=(8,)"], None,
     "smaller than 28x28: give it 3 stages"),
    ("bad general conv net field", ["--config", "configs/conv_wide.py",
                                    "--config.encoder.norm=batch"], None,
     "encoder.norm='batch': it must be one of ('none', 'layer', 'group')"),
    ("bad deep MLP field", ["--config", "configs/deep.py", "--config.encoder.hidden=(64,0)"],
     None, "encoder.hidden=(64, 0): it must be a tuple of positive integers"),
    ("bad activation", ["--config", "configs/deep.py", "--config.decoder.activation=swish"],
     None, "decoder.activation='swish': it must be one of"),
    ("unknown kernel initializer", ["--config", "configs/deep.py",
                                    "--config.encoder.kernel_init=zeros"], None,
     "encoder.kernel_init='zeros': it must be one of ('lecun_normal', 'glorot_uniform', "
     "'he_normal', 'torch')"),
    ("bad code activation", ["--config", "configs/deep.py",
                             "--config.encoder.code_activation=step"], None,
     "encoder.code_activation='step'"),
    ("unknown decoder", ["--config.decoder.name=sparse"], None, "unknown decoder 'sparse'"),
    ("general conv net: no stages", ["--config", "configs/conv_wide.py",
                                     "--config.encoder.features=()"], None,
     "encoder.features=(): it must be a tuple of positive integers, at least one"),
    ("general conv net: latent_channels 0", ["--config", "configs/conv_wide.py",
                                             "--config.encoder.latent_channels=0"], None,
     "encoder.latent_channels=0"),
    ("general conv net: kernel_size 0", ["--config", "configs/conv_wide.py",
                                         "--config.decoder.kernel_size=0"], None,
     "decoder.kernel_size=0"),
    ("general conv net: unknown downsampling", ["--config", "configs/conv_wide.py",
                                                "--config.encoder.downsample=avgpool"], None,
     "encoder.downsample='avgpool': it must be one of ('stride', 'maxpool')"),
    ("general conv net: unknown upsampling", ["--config", "configs/conv_wide.py",
                                              "--config.decoder.upsample=bilinear"], None,
     "decoder.upsample='bilinear': it must be one of ('nearest', 'subpixel', 'transpose')"),
    ("the lecture's conv model on other images", ["--config", "configs/conv.py",
                                                  "--config.dataset=cifar_like",
                                                  "--config.data_dir={tmp}/cifar_tfds"],
     "cifar_like", "encoder 'conv' cannot take the cifar_like images of shape (32, 32, 3)"),
    ("unknown compute dtype", ["--config.dtype=float16"], None, "dtype='float16'"),
    ("negative loss weight", ["--config", "configs/sparse.py", "--config.loss_weights.l1=-1"],
     None, "loss_weights.l1=-1.0: it must be a number >= 0"),
    ("loss weight for a term the model does not report",
     ["--config", "{tmp}/weighs_kl.py"], "weighs_kl", "config.loss_weights names ['kl']"),
    ("negative KL weight (beta)", ["--config", "configs/vae.py", "--config.loss_weights.kl=-4"],
     None, "loss_weights.kl=-4.0: it must be a number >= 0"),
    ("a loss weight beyond float32", ["--config", "configs/vae.py",
                                      "--config.loss_weights.kl=1e300"], None,
     "loss_weights.kl=1e+300: it must be a number >= 0 that float32 holds"),
    ("an infinite loss weight", ["--config", "configs/vae.py", "--config.loss_weights.kl=inf"],
     None, "loss_weights.kl=inf: it must be a number >= 0 that float32 holds"),
    ("a loss weight float32 makes 0", ["--config", "configs/sparse.py",
                                       "--config.loss_weights.l1=1e-40"], None,
     "loss_weights.l1=1e-40: it must be a number >= 0 that float32 holds: 0, or from 1.2e-38"),
    ("negative loss warm-up", ["--config", "configs/vae.py", "--config.loss_warmup_steps=-1"],
     None, "loss_warmup_steps=-1: it must be an integer in [0, 2**31) (0 = no warm-up"),
    ("loss warm-up beyond int32", ["--config", "configs/vae.py",
                                   "--config.loss_warmup_steps=99999999999"], None,
     "loss_warmup_steps=99999999999: it must be an integer in [0, 2**31)"),
    ("IWAE: the KL in closed form", ["--config", "configs/iwae.py",
                                     "--config.encoder.kl=analytic"], None,
     "needs the KL at each draw, and encoder 'vae' reports it in closed form"),
    ("importance samples with a per-pixel loss", ["--config", "configs/iwae.py",
                                                  "--config.loss=bce"], None,
     "the loss must be a likelihood, not 'bce'"),
    ("VampPrior of 0 components", ["--config", "configs/vamp.py",
                                   "--config.encoder.prior.components=0"], None,
     "encoder.prior.components=0: it must be a positive integer"),
    ("beta-TC-VAE: unknown sampling", ["--config", "configs/beta_tc_vae.py",
                                       "--config.encoder.sampling=mcmc"], None,
     "encoder.sampling='mcmc': it must be one of ('mws', 'mss')"),
    ("WAE: unknown kernel", ["--config", "configs/wae.py", "--config.encoder.kernel=gauss"],
     None, "encoder.kernel='gauss': it must be one of ('imq', 'rbf')"),
    ("RAE: negative weight decay", ["--config", "configs/rae.py",
                                    "--config.weight_decay.decoder=-1"], None,
     "weight_decay.decoder=-1.0: it must be a number >= 0"),
    ("negative gradient clip", ["--config", "configs/dense.py",
                                "--config.grad_clip_norm=-1.0"], None,
     "grad_clip_norm=-1.0: it must be a number > 0, or None (no clipping)"),
    ("Adam's epsilon 0", ["--config", "configs/dense.py", "--config.adam_eps=0.0"], None,
     "adam_eps=0.0: it must be a number > 0 (Adam's epsilon; 1e-8 is optax's default)"),
    ("adversarial autoencoder: unknown net", ["--config", "configs/aae.py",
                                              "--config.encoder.net.name=nope"], None,
     "unknown encoder 'nope' (config field encoder.net.name)"),
    ("VAE: latent_dim 0", ["--config", "configs/vae.py", "--config.encoder.latent_dim=0"], None,
     "encoder.latent_dim=0: it must be a positive integer"),
    ("VAE: a hidden layer of width 0", ["--config", "configs/vae.py",
                                        "--config.encoder.hidden=(0,)"], None,
     "encoder.hidden=(0,): it must be a tuple of positive integers"),
    ("VAE: bad activation", ["--config", "configs/vae.py", "--config.encoder.activation=swish"],
     None, "encoder.activation='swish': it must be one of"),
    ("codec: a bad lambda", ["--config", "configs/codec.py:fast"], None,
     "lambda 'fast' is not a number: give one after the colon, as configs/codec.py:0.0035"),
    ("codec: lambda 0", ["--config", "configs/codec.py:0"], None, "lambda '0' must be > 0"),
    ("codec: negative rate weight", ["--config", "configs/codec.py",
                                     "--config.loss_weights.rate=-1"], None,
     "loss_weights.rate=-1.0: it must be a number >= 0"),
    ("codec: a rate weight beyond float32", ["--config", "configs/codec.py",
                                              "--config.loss_weights.rate=1e39"], None,
     "loss_weights.rate=1e+39: it must be a number >= 0 that float32 holds"),
    ("codec: unknown analysis transform", ["--config", "configs/codec.py",
                                           "--config.encoder.analysis.name=mpl"], None,
     "unknown encoder 'mpl' (config field encoder.analysis.name)"),
    ("codec: bad field of the analysis transform", ["--config", "configs/codec.py",
                                                    "--config.encoder.analysis.latent_dim=0"],
     None, "encoder.analysis.latent_dim=0: it must be a positive integer"),
    ("codec: unknown field of the analysis transform",
     ["--config", "configs/codec.py", "--config.encoder.analysis.width=3"], None,
     "unknown config field 'width'"),
    ("codec: the prior's CDF network with a layer of width 0",
     ["--config", "configs/codec.py", "--config.encoder.filters=(3,0)"], None,
     "encoder.filters=(3, 0): it must be a tuple of positive integers"),
    ("codec: the prior's init_scale 0",
     ["--config", "configs/codec.py", "--config.encoder.init_scale=0.0"], None,
     "encoder.init_scale=0.0: it must be a positive number"),
    ("hyperprior: a bad lambda", ["--config", "configs/hyperprior.py:fast"], None,
     "lambda 'fast' is not a number: give one after the colon, as configs/hyperprior.py:0.0035"),
    ("hyperprior: no stride-2 level from y to z",
     ["--config", "configs/hyperprior.py", "--config.encoder.hyper_levels=0"], None,
     "encoder.hyper_levels=0: it must be a positive integer"),
    ("hyperprior: a codec as its analysis transform",
     ["--config", "configs/hyperprior.py", "--config.encoder.analysis.name=factorized"], None,
     "it must be a transform, not a codec ('gdn', say)"),
    ("GDN transforms: no stride-2 level",
     ["--config", "configs/hyperprior.py", "--config.encoder.analysis.levels=0"], None,
     "encoder.analysis.levels=0: it must be a positive integer"),
    ("GDN transforms: a synthesis with fewer levels than the analysis",
     ["--config", "configs/codec_conv.py", "--config.decoder.levels=2"], None,
     "a code of 4x4 positions decodes to at most 16x16 pixels, not 28x28"),
    ("VQ-VAE: codebook of 1 code", ["--config", "configs/vqvae.py",
                                    "--config.encoder.codebook_size=1"], None,
     "encoder.codebook_size=1: it must be an integer >= 2"),
    ("VQ-VAE: code_dim 0", ["--config", "configs/vqvae.py", "--config.encoder.code_dim=0"],
     None, "encoder.code_dim=0: it must be a positive integer"),
    ("VQ-VAE: unknown codebook update", ["--config", "configs/vqvae.py",
                                         "--config.encoder.codebook_update=kmeans"], None,
     "encoder.codebook_update='kmeans': it must be one of ('loss', 'ema')"),
    ("VQ-VAE: EMA decay 1", ["--config", "configs/vqvae.py", "--config.encoder.ema_decay=1.0"],
     None, "encoder.ema_decay=1.0: it must be a number in [0, 1)"),
    ("VQ-VAE: negative dead_code_after", ["--config", "configs/vqvae.py",
                                          "--config.encoder.dead_code_after=-1"], None,
     "encoder.dead_code_after=-1: it must be an integer >= 0"),
    ("VQ-VAE: dead_code_after beyond int32 (an OverflowError inside jit)",
     ["--config", "configs/vqvae.py", "--config.encoder.dead_code_after=99999999999"], None,
     "encoder.dead_code_after=99999999999: it must be an integer >= 0 (train steps; 0 = never "
     "reset), at most 2147483647"),
    ("general conv net: kernel_size beyond int32", ["--config", "configs/conv_wide.py",
                                                    "--config.encoder.kernel_size=99999999999"],
     None, "encoder.kernel_size=99999999999: it must be a positive integer, at most 2147483647"),
    ("a hidden layer wider than int32", ["--config", "configs/deep.py",
                                         "--config.encoder.hidden=(64,4294967296)"], None,
     "it must be a tuple of positive integers, each at most 2147483647"),
    ("codec: init_scale beyond float32", ["--config", "configs/codec.py",
                                          "--config.encoder.init_scale=1e39"], None,
     "encoder.init_scale=1e+39: it must be a positive number, at most 3.403e+38"),
    ("eval_batch_size beyond int32", ["--config.eval_batch_size=99999999999"], None,
     "eval_batch_size=99999999999: it must be a positive integer at most 2**31 - 1"),
    # Memory: the machine's is fixed at 8 GB here, so the lines read the same everywhere.
    ("general conv net: kernels too large for memory (kernel_size=1000: 37 GB)",
     ["--config", "configs/conv_wide.py", "--config.encoder.kernel_size=1000"], "8gb",
     "needs at least 37.1 GB of memory to train (37.1 GB of parameters with Adam's state"),
    ("VAE: a code too large for memory (it hung 14 minutes in the first step)",
     ["--config", "configs/vae.py", "--config.encoder.latent_dim=100000000"], "8gb",
     "its largest parameter is decoder/hidden0/kernel, 100000000x500"),
    ("an eval batch too large for memory", ["--config.eval_batch_size=200000000"], "8gb",
     "lower --config.batch_size / --config.eval_batch_size (its largest array at 200000000 "
     "images: 200000000x784)"),
    ("unknown input pipeline", ["--config.input_pipeline=gpu"], None, "input_pipeline='gpu'"),
    ("steps_per_epoch 0", ["--config.steps_per_epoch=0"], None, "steps_per_epoch=0"),
    ("eval_batch_size 0", ["--config.eval_batch_size=0"], None, "eval_batch_size=0"),
    ("negative seed", ["--config.seed=-1"], None, "seed=-1"),
    ("seed too large for int32", ["--config.seed=2147483648"], None, "seed=2147483648"),
    ("negative steps_per_call", ["--config.steps_per_call=-1"], None, "steps_per_call=-1"),
    ("negative checkpoint interval", ["--config.checkpoint_every_steps=-5"], None,
     "checkpoint_every_steps=-5"),
    ("unknown dataset", ["--config.dataset=imagenet_9000"], None, "unknown dataset"),
    ("dataset not prepared, offline", ["--config.dataset=mnist", "--config.data_dir={tmp}/empty_tfds",
                                       "--config.idx_dir={tmp}/no_idx"], "offline",
     "cannot be downloaded (no network)"),
    ("damaged IDX files", ["--config.data_dir={tmp}/fresh_tfds", "--config.idx_dir={tmp}/bad_idx"],
     "bad_idx", "IDX files in"),
    ("images folder that does not exist", ["--config.dataset=folder:{tmp}/no_images"], None,
     "no_images does not exist: give a folder of images"),
    ("images folder that is empty", ["--config.dataset=folder:{tmp}/images",
                                     "--config.data_dir={tmp}/tfds"], "images:empty",
     "holds no images: put PNG, JPEG or WebP files in it"),
    ("a file that is not an image among the images",
     ["--config.dataset=folder:{tmp}/images", "--config.data_dir={tmp}/tfds"],
     "images:text_file", "notes.txt is not an image (PNG, JPEG or WebP by its name): move it"),
    ("an image file that is no image", ["--config.dataset=folder:{tmp}/images",
                                        "--config.data_dir={tmp}/tfds"], "images:garbage",
     "00003.png (UnidentifiedImageError): it is damaged or not an image: replace it"),
    ("an image cut short", ["--config.dataset=folder:{tmp}/images",
                            "--config.data_dir={tmp}/tfds"], "images:truncated",
     "00003.png (OSError: image file is truncated"),
    ("images smaller than the crop", ["--config.dataset=folder:{tmp}/images",
                                      "--config.data_dir={tmp}/tfds", "--config.crop_size=32"],
     "images:ok", "is 28x28, smaller than the crop_size 32: lower --config.crop_size to at "
     "most 28"),
    ("images of several sizes without a crop", ["--config", "configs/conv_wide.py",
                                                "--config.dataset=folder:{tmp}/images",
                                                "--config.data_dir={tmp}/tfds"],
     "images:sizes", "have several sizes: set --config.crop_size=N"),
    ("grayscale and RGB images in one folder", ["--config.dataset=folder:{tmp}/images",
                                                "--config.data_dir={tmp}/tfds"],
     "images:mixed", "00003.png is RGB but"),
    ("an image with an alpha channel", ["--config.dataset=folder:{tmp}/images",
                                        "--config.data_dir={tmp}/tfds"], "images:alpha",
     "00003.png has mode RGBA: the dataset takes 8-bit grayscale (L) or RGB images: drop "
     "the alpha channel"),
    ("a held-out fraction that leaves the test split empty",
     ["--config.dataset=folder:{tmp}/images", "--config.data_dir={tmp}/tfds",
      "--config.test_fraction=0.01"], "images:few",
     "has no images (a held-out fraction 0.01 of 3 images)"),
    ("folder: without a path", ["--config.dataset=folder:"], None,
     "it must be folder:DIR with the folder's path after the colon"),
    ("test_fraction 1", ["--config.test_fraction=1.0"], None,
     "test_fraction=1.0: it must be a number between 0 and 1"),
    ("crop_size 0", ["--config.crop_size=0"], None, "crop_size=0: it must be a positive"),
    ("split that does not exist", ["--config.eval_split=validation"], None,
     "no split 'validation'"),
    ("batch larger than the dataset", ["--config.batch_size=1024"], None,
     "larger than the 512 examples"),
    ("workdir under a file", ["--workdir={tmp}/a_file/run"], "file", "which is a file"),
    ("workdir is a file", ["--workdir={tmp}/a_file"], "file", "is a file"),
    ("workdir not writable", ["--workdir={tmp}/locked/run"], "locked", "is not writable"),
    ("more grid images than an eval batch", ["--config.num_images=10",
                                             "--config.eval_batch_size=4"], None,
     "num_images=10: it must be at most eval_batch_size (4)"),
    ("steps_per_epoch beyond the split", ["--config.steps_per_epoch=100000"], None,
     "steps_per_epoch 100000 is more than the"),
    ("data_dir is a file", ["--config.data_dir={tmp}/a_file"], "file", "is a file: give the "
     "folder where tfds keeps"),
    ("data_dir not writable", ["--config.data_dir={tmp}/locked"], "locked",
     "cannot prepare fashion_mnist in"),
    ("workdir holds other files, no run", ["--workdir={tmp}/not_a_run"], "not_a_run",
     "holds other files and no run"),
    ("--restart on a folder that is not a run", ["--workdir={tmp}/not_a_run", "--restart"],
     "not_a_run", "holds other files and no run"),
    ("workdir holds another program's config.json", ["--workdir={tmp}/foreign"], "foreign",
     "holds other files and no run"),
    ("workdir of another config", ["--config.encoder.latent_dim=32"], "trained",
     "another config (differs in encoder.latent_dim)"),
    ("workdir with a broken config.json", [], "broken_json", "cannot read"),
    ("every checkpoint damaged", [], "damaged", "no checkpoint"),
    ("loss diverges (NaN)", ["--config", "configs/conv.py", "--config.learning_rate=1e12",
                             "--config.loss=mse"], None,
     "the loss became nan in epoch 1 at step 2: lower --config.learning_rate and rerun"),
    ("a loss weight whose product with its term overflows float32",
     ["--config", "configs/vae.py", "--config.loss_weights.kl=3e38"], None,
     "the loss became inf in epoch 1 at step 1: loss_weights.kl=3e+38 times its term"),
    ("a loss weight whose gradients overflow Adam's moments",
     ["--config", "configs/vae.py", "--config.loss_weights.kl=1e20"], None,
     "Adam's second moments overflowed float32"),
    ("half a multi-process environment", [], "half_env", "also set JAX_NUM_PROCESSES"),
]

DIVERGES = ("loss diverges (NaN)", "a loss weight whose product with its term overflows float32",
            "a loss weight whose gradients overflow Adam's moments")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data):
  """A finished tiny run to copy for the workdir cases."""
  workdir = str(tmp_path_factory.mktemp("errors") / "trained")
  code, err = run_cli(_args([], tiny_data, workdir))
  assert code == 0, err
  return workdir


def _args(args, tiny_data, workdir, tmp="."):
  """The case's arguments with the defaults a test run needs: dense config, tiny data."""
  if args is None:  # the bare command
    return [f"--workdir={workdir}"]
  idx, data = tiny_data
  args = [a.format(data=data, idx=idx, run=workdir, tmp=tmp) for a in args]
  if "--config" not in args:
    args = ["--config", "configs/dense.py", *args]
  if not any(a.startswith("--config.data_dir") for a in args):
    args.append(f"--config.data_dir={data}")
  if not any(a.startswith("--config.idx_dir") for a in args):
    args.append(f"--config.idx_dir={idx}")
  args += [a for a in TINY if a.split("=")[0] not in {x.split("=")[0] for x in args}]
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={workdir}")
  return args


@contextlib.contextmanager
def _argv(argv):
  old, sys.argv = sys.argv, argv
  try:
    yield
  finally:
    sys.argv = old


def run_cli(args) -> tuple[int, str]:
  """launch.py's parse_flags + main in this process: (exit code, stderr)."""
  # config_flags defines one `config.<field>` flag per override it sees in sys.argv:
  # forget those of the previous case before parsing the next.
  for name in list(flags.FLAGS):
    if name.startswith("config."):
      delattr(flags.FLAGS, name)
  for name in [m for m in sys.modules if m.endswith("_config")]:
    del sys.modules[name]  # and the config module it loaded
  flags.FLAGS.unparse_flags()
  err = io.StringIO()
  code = 0
  with redirect_stderr(err), _argv(["launch.py", *args]):
    try:
      argv = launch.parse_flags(["launch.py", *args])
      launch.main(argv)
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
  return code, err.getvalue()


def _setup(kind, tmp, workdir, trained, monkeypatch):
  if kind == "syntax":
    (tmp / "syntax.py").write_text("def get_config(:\n")
  elif kind == "raises":
    (tmp / "raises.py").write_text("def get_config():\n  return 1 / 0\n")
  elif kind == "reads":  # the config file is there; what it reads is not
    (tmp / "reads.py").write_text("import json\ndef get_config():\n"
                                  "  return json.load(open('/no/such.json'))\n")
  elif kind == "cifar_like":  # 32x32x3 images (tests/cifar_like.py)
    import cifar_like  # pylint: disable=import-outside-toplevel
    cifar_like.prepare(str(tmp / "cifar_tfds"))
  elif kind == "weighs_kl":  # a VAE's weight left in a config whose model has no KL term
    (tmp / "weighs_kl.py").write_text("from configs import dense\ndef get_config():\n"
                                      "  c = dense.get_config()\n  c.loss_weights.kl = 1.0\n"
                                      "  return c\n")
  elif kind == "boom":  # the user's module is found, and fails as it is imported
    (tmp / "boom_models.py").write_text('import flax.linen as nn\n\nraise RuntimeError("boom")\n')
    monkeypatch.syspath_prepend(str(tmp))
  elif kind == "empty":
    (tmp / "empty.py").write_text("x = 1\n")
  elif kind == "bad_idx":
    shutil.copytree(trained.idx_dir, tmp / "bad_idx")
    (tmp / "bad_idx" / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
  elif kind == "file":
    (tmp / "a_file").write_text("mine\n")
  elif kind == "not_a_run":
    os.makedirs(tmp / "not_a_run")
    (tmp / "not_a_run" / "notes.txt").write_text("mine\n")
  elif kind == "foreign":  # a JSON list: it crashed the config comparison
    os.makedirs(tmp / "foreign")
    (tmp / "foreign" / "config.json").write_text("[1, 2]")
  elif kind == "locked":
    os.makedirs(tmp / "locked")
    subprocess.run(["chattr", "+i", str(tmp / "locked")], check=True)  # even root can't write
  elif kind in ("trained", "broken_json", "damaged"):
    shutil.copytree(trained.workdir, workdir)
    if kind == "broken_json":
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write("{not json")
    if kind == "damaged":
      for path in glob.glob(os.path.join(workdir, "checkpoints", "*", "state", "**", "*"),
                            recursive=True):
        if os.path.isfile(path):
          with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
  elif kind == "offline":
    # The network cannot be used in tests: where it is up, the probe is told it is not.
    monkeypatch.setattr(data, "network_reachable", lambda hosts, timeout=3.0: False)
  elif kind == "8gb":
    from ae_jax.models import footprint  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(footprint, "available_memory", lambda: (8 * 10**9,
                                                                "are free on this machine"))
  elif kind and kind.startswith("images:"):  # a folder dataset, whole or with one fault
    from conftest import write_image_folder  # pylint: disable=import-outside-toplevel
    write_image_folder(str(tmp / "images"), kind.split(":")[1])
  elif kind == "half_env":
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    monkeypatch.delenv("JAX_NUM_PROCESSES", raising=False)


def _snapshot(root) -> dict:
  out = {}
  for path in glob.glob(os.path.join(str(root), "**"), recursive=True):
    if os.path.isfile(path):
      with open(path, "rb") as f:
        out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


class _Trained:
  def __init__(self, workdir, tiny_data):
    self.workdir, (self.idx_dir, self.data_dir) = workdir, tiny_data


def _run_case(case, tiny_data, trained_run, tmp, monkeypatch):
  _, args, kind, _ = case
  workdir = str(tmp / "run")
  _setup(kind, tmp, workdir, _Trained(trained_run, tiny_data), monkeypatch)
  before = _snapshot(tmp)
  try:
    code, err = run_cli(_args(args, tiny_data, workdir, str(tmp)))
  finally:
    if kind == "locked":
      subprocess.run(["chattr", "-i", str(tmp / "locked")], check=True)
  changed = {p for p, h in before.items() if _snapshot(tmp).get(p) != h}
  return code, err, changed, workdir


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(case, tiny_data, trained_run, tmp_path, monkeypatch):
  code, err, changed, workdir = _run_case(case, tiny_data, trained_run, tmp_path, monkeypatch)
  lines = [l for l in err.strip().splitlines() if l.startswith("error: ")]
  assert code == 2, err[-2000:]
  assert len(lines) == 1 and case[3] in lines[0], err[-2000:]
  assert "Traceback" not in err
  if case[0] not in DIVERGES:
    assert not changed, f"files changed: {sorted(changed)}"
  else:  # these train, and diverge before their first checkpoint
    assert not os.listdir(os.path.join(workdir, "checkpoints"))  # the bad state not saved
    assert "checkpoint" not in lines[0]  # none is kept, so none is promised
  _check_documented(_doc_row(case[0], lines[0], tiny_data, tmp_path))


def _doc_row(what: str, line: str, tiny_data, tmp) -> str:
  for path, name in ((str(tmp), "$TMP"), (tiny_data[0], "$IDX"), (tiny_data[1], "$DATA")):
    line = line.replace(path, name)
  return f"| {what} | `{line.replace('|', '/')}` |"


def _check_documented(row: str, written: list | None = None,
                      test_file: str = "tests/test_errors.py"):
  """Asserts docs/errors.md has `row`; with AE_JAX_WRITE_ERRORS_DOC set, collects it in
  `written` (this module's list by default) for the rewrite instead."""
  if os.environ.get("AE_JAX_WRITE_ERRORS_DOC"):
    (_WRITTEN if written is None else written).append(row)
    return
  with open(DOC) as f:
    assert row in f.read().splitlines(), (
        f"docs/errors.md lacks {row!r}: regenerate it with AE_JAX_WRITE_ERRORS_DOC=1 "
        f"python -m pytest {test_file}")


_WRITTEN: list[str] = []


def write_doc_section(heading: str, intro: str, rows: list[str]) -> None:
  """Replaces the section `## heading` of docs/errors.md (up to the next `## ` or the end)
  with `intro` and `rows`, or appends it: each test module rewrites its own section."""
  with open(DOC) as f:
    text = f.read()
  section = f"## {heading}\n\n{intro}" + "\n".join(rows) + "\n"  # intro: up to the rows
  start = text.find(f"\n## {heading}\n")
  if start < 0:
    text = text.rstrip("\n") + "\n\n" + section
  else:
    end = text.find("\n## ", start + 1)
    text = text[:start + 1] + section + (text[end:] if end >= 0 else "")
  with open(DOC, "w") as f:
    f.write(text)


@pytest.fixture(scope="module", autouse=True)
def _write_doc():
  yield
  if os.environ.get("AE_JAX_WRITE_ERRORS_DOC") and _WRITTEN:
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    sections = ""  # the "## ..." sections other tests write (tests/test_full_disk.py) stay
    if os.path.exists(DOC):
      with open(DOC) as f:
        text = f.read()
      sections = text[text.find("\n## "):] if "\n## " in text else ""
    with open(DOC, "w") as f:
      f.write(HEADER + "\n".join(_WRITTEN) + "\n" + sections)


HEADER = """# Bad inputs and what the user sees

Every row is a test (`tests/test_errors.py`): `python launch.py ...` with that mistake exits
with status 2, prints this one line and no traceback, and leaves every file it found as it
was. `$TMP` stands for a scratch folder, `$DATA`/`$IDX` for a tfds data_dir and a folder of
IDX files. Regenerate with `AE_JAX_WRITE_ERRORS_DOC=1 python -m pytest tests/test_errors.py`.

| the user gives | the one line printed (exit status 2) |
|---|---|
"""
