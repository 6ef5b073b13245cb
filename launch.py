"""Trains an autoencoder: python launch.py --config configs/denoise.py [--config.x=y ...].

Kept short on purpose (as in the Flax examples): all the work is in
`ae_jax.training.train.train_and_evaluate`, which notebooks and tests call directly. Mistakes a
user can make (bad flags, config file or values, data, workdir) end in one line, exit 2.
"""
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only feeds data: keep it quiet

_INTERRUPTED = "interrupted: rerun the same command to start (or resume) the run"
try:  # Ctrl-C this early is one line too
  from absl import app, flags, logging  # pylint: disable=wrong-import-position
  import ml_collections  # pylint: disable=wrong-import-position
  from ml_collections import config_flags  # pylint: disable=wrong-import-position
except KeyboardInterrupt:
  print(_INTERRUPTED, file=sys.stderr)
  sys.exit(130)

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).",
                                lock_config=True)


class _FamilySwitchingParser(config_flags.config_flags.ConfigFileFlagParser):
  """ml_collections' config file parser, then `--config.encoder.name=conv` (a family other
  than the file's) makes that group the new family's defaults and the fields the command line
  gives it (config_lib.switch_families), and a field a group's module takes that the file
  left out joins the group (config_lib.add_module_fields), before the overrides are
  checked against it."""

  def parse(self, path):
    config = super().parse(path)
    if isinstance(config, ml_collections.ConfigDict):  # not a file that failed to load
      from ae_jax.training import config_lib  # pylint: disable=import-outside-toplevel
      argv = FLAGS.read_flags_from_files(sys.argv, force_gnu=False)  # as ml_collections
      overrides = config_lib.command_line_overrides(argv)
      config_lib.switch_families(config, overrides)
      config_lib.add_module_fields(config, overrides)
    return config


FLAGS["config"].parser = _FamilySwitchingParser(name="config", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and images go "
                    "(default: runs/<config name>).")
flags.DEFINE_bool("restart", False, "Move an existing run in --workdir aside (renamed, not "
                  "deleted) and start over.")
flags.DEFINE_string("compilation_cache_dir", None, "Where JAX keeps compiled steps between "
                    "runs (default: JAX_COMPILATION_CACHE_DIR, else "
                    "~/.cache/ae_jax/jax); empty: no cache.")
flags.mark_flags_as_required(["config"])


def _fail(message: str):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _config_path(argv) -> str:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return "?"


def _explain(e: Exception, path: str) -> str:
  """One line for an error raised while loading the config file or applying overrides."""
  if isinstance(e, flags.Error):
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if len(lines) > 1:  # ml_collections puts the config's own traceback in the message
      return (f"config file {path} failed to load ({lines[-1]}): fix the file, or give "
              "the path alone, as configs/denoise.py")
    return f"{e} (see python launch.py --helpshort)"
  if isinstance(e, SyntaxError):
    return f"config file {path} has a syntax error at line {e.lineno}: {e.msg}"
  if isinstance(e, OSError) and not os.path.isfile(path):
    return f"config file {path} cannot be read: give a path such as configs/denoise.py"
  if "get_config" in str(e):
    return f"config file {path} defines no get_config(): see configs/dense.py for the form"
  if isinstance(e, (AttributeError, KeyError)):
    # ml_collections words it as "'name'" and may add 'Did you mean "other" ...'.
    names = re.findall(r"[A-Za-z_]\w*", str(e))
    field = names[0] if names else str(e)
    hint = re.search(r'Did you mean "(\w+)"', str(e))
    hint = f" (did you mean {hint.group(1)!r}?)" if hint else ""
    return (f"unknown config field {field!r}{hint}: see configs/default.py for the fields "
            "there are")
  return f"cannot load config file {path} ({type(e).__name__}: {e}): fix its get_config()"


def parse_flags(argv):
  """absl's parsing, with every bad flag, config file or override reported as one line."""
  try:
    args = FLAGS(argv)
    FLAGS.config.keys()  # a file that failed to load raises here, inside the try
    return args
  except Exception as e:  # pylint: disable=broad-except
    _fail(_explain(e, _config_path(argv)))


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}: flags look like --config.batch_size=64")
  logging.set_verbosity(logging.WARNING)
  from ae_jax.training import config_lib  # pylint: disable=import-outside-toplevel
  from ae_jax.core import errors  # pylint: disable=import-outside-toplevel
  from ae_jax.core.errors import UserError  # pylint: disable=import-outside-toplevel
  try:
    config_lib.validate(FLAGS.config)  # before importing TensorFlow: bad values fail fast
  except UserError as e:
    _fail(str(e))
  from ae_jax.training import compile_cache, train  # pylint: disable=import-outside-toplevel

  try:  # before anything compiles: JAX decides then whether a cache is used
    explicit = FLAGS["compilation_cache_dir"].present
    compile_cache.enable(FLAGS.compilation_cache_dir if explicit else compile_cache.DEFAULT_DIR,
                         explicit=explicit)
  except UserError as e:
    _fail(str(e))

  workdir = FLAGS.workdir
  if workdir is None:  # the default: runs/<config name> (missing folders are made)
    workdir = os.path.join(
        "runs", os.path.splitext(os.path.basename(FLAGS["config"].config_filename))[0])
  try:
    # SIGTERM outside the training loop (data preparation, compiling) raises, as Ctrl-C
    # does: what was being written (tfds' folder, a cache) is removed on the way out.
    with errors.stops_raise():
      train.train_and_evaluate(FLAGS.config, workdir, restart=FLAGS.restart)
  except UserError as e:
    _fail(str(e))
  except OSError as e:  # a write no `errors.writing` named: still one line, where it went
    error = errors.unnamed_disk_error(e, "--workdir", workdir)
    if error is None:
      raise
    _fail(str(error))
  except train.Interrupted as e:
    print(f"interrupted: {e}", file=sys.stderr)
    sys.exit(128 + e.signum)  # the shell's convention for "ended by a signal"
  except errors.Stopped as e:
    print(_INTERRUPTED, file=sys.stderr)
    sys.exit(errors.stop_status(e))
  except Exception as e:  # pylint: disable=broad-except  (XLA's errors have no own type)
    size = errors.out_of_memory(e)  # the last resort: footprint checks come first
    if size is None:
      raise
    _fail(str(errors.OutOfMemory(size, "lower --config.batch_size (and eval_batch_size) or "
                                       "the model's size")))
  print(f"done: outputs in {workdir}", file=sys.stderr)


if __name__ == "__main__":
  try:
    app.run(main, flags_parser=parse_flags)
  except KeyboardInterrupt:  # Ctrl-C outside the training loop (imports, data, compile)
    print(_INTERRUPTED, file=sys.stderr)
    sys.exit(130)
