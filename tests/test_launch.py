"""launch.py as a user runs it: overrides, and every mistake as one line with exit code 2."""
import json
import os
import subprocess
import sys

import ml_collections
import pytest

from ae_jax.training import config_lib
from ae_jax.core.errors import UserError
from conftest import REPO
from configs import default, dense


def run_launch(*args, cwd=REPO, timeout=120, env=None):
  env = dict(env or os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), *args], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=timeout)


def test_defaults_reproduce_the_lecture():
  from configs import conv, denoise  # pylint: disable=import-outside-toplevel
  d, c, n = dense.get_config(), conv.get_config(), denoise.get_config()
  assert (d.encoder.to_dict(), d.decoder.name, d.loss, d.learning_rate, d.num_epochs,
          d.batch_size) == ({"name": "dense", "latent_dim": 64}, "dense", "bce", 1e-3, 10, 128)
  assert (c.encoder.to_dict(), c.decoder.to_dict(), c.num_epochs, c.noise.scale) == (
      {"name": "conv"}, {"name": "conv"}, 10, 0.0)
  assert (n.encoder.name, n.noise.loc, n.noise.scale, n.num_epochs, n.batch_size) == (
      "conv", 0.5, 0.1, 30, 128)
  for config in (d, c, n):
    assert not config.loss_weights and config.dtype == "float32"
  for config in (d, c, n):
    config_lib.validate(config)


@pytest.mark.parametrize("field,value,match", [
    ("loss", "hinge", "loss='hinge'"), ("batch_size", 0, "batch_size=0"),
    ("dtype", "float16", "dtype='float16'"), ("learning_rate", -1.0, "learning_rate"),
    ("input_pipeline", "magic", "input_pipeline"),
    ("steps_per_epoch", 0, "steps_per_epoch=0"), ("num_epochs", 0, "num_epochs=0"),
])
def test_validate_names_the_bad_field(field, value, match):
  config = default.get_config()
  config[field] = value
  with pytest.raises(UserError, match=match):
    config_lib.validate(config)


def test_validate_keeps_weights_within_float32_and_the_warm_up_within_int32():
  from configs import vae  # pylint: disable=import-outside-toplevel
  config = vae.get_config()
  for ok in (0, 0.0, config_lib.FLOAT32_MIN_NORMAL, 1.0, config_lib.FLOAT32_MAX):
    config.loss_weights.kl = ok
    config_lib.validate(config)
  for bad in (-1.0, 1e-40, 3.5e38, 1e300, float("inf"), float("nan")):
    config.loss_weights.kl = bad
    with pytest.raises(UserError, match="loss_weights.kl=.*float32 holds"):
      config_lib.validate(config)
  config = vae.get_config()
  config.loss_warmup_steps = 2**31 - 1
  config_lib.validate(config)
  config.loss_warmup_steps = 2**31
  with pytest.raises(UserError, match=r"loss_warmup_steps=2147483648: .* \[0, 2\*\*31\)"):
    config_lib.validate(config)


def test_validate_refuses_unknown_fields_and_negative_noise():
  config = default.get_config()
  config.noise.scale = -0.1
  with pytest.raises(UserError, match="noise.scale"):
    config_lib.validate(config)
  config = default.get_config()
  config.latnet_dim = 3
  with pytest.raises(UserError, match="unknown config field.*latnet_dim"):
    config_lib.validate(config)
  # In a config file, a typo inside a group trained with the default noise, unnoticed.
  from configs import denoise  # pylint: disable=import-outside-toplevel
  config = denoise.get_config()
  config.noise.sigma = 0.3
  with pytest.raises(UserError, match=r"unknown config field\(s\) \['noise.sigma'\]"):
    config_lib.validate(config)
  # A group or a field left out gave an AttributeError traceback.
  config = ml_collections.ConfigDict({**denoise.get_config().to_dict(),
                                      "noise": {"loc": 0.5}})
  with pytest.raises(UserError, match=r"the config lacks field\(s\) \['noise.scale'\]"):
    config_lib.validate(config)
  config = ml_collections.ConfigDict({k: v for k, v in denoise.get_config().to_dict().items()
                                      if k != "seed"})
  with pytest.raises(UserError, match=r"lacks field\(s\) \['seed'\]: build it from"):
    config_lib.validate(config)
  config = ml_collections.ConfigDict({**denoise.get_config().to_dict(), "noise": 0.1})
  with pytest.raises(UserError, match=r"noise must be a group with the fields \['loc', 'scale'\]"):
    config_lib.validate(config)


@pytest.mark.parametrize("args,message", [
    (["--config.loss=hinge"], "bad config value loss='hinge'"),
    (["--config.batch_size=0"], "batch_size=0"),
    (["--config.foo=1"], "unknown config field 'foo'"),
    (["--config.batch_size=abc"], "--config.batch_size=abc"),
    (["--config.dataset=no_such_set"], "unknown dataset 'no_such_set'"),
])
def test_launch_reports_user_errors_in_one_line(tmp_path, args, message):
  result = run_launch("--config", "configs/dense.py", "--workdir", str(tmp_path / "w"), *args)
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last
  assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "w")  # nothing written for a refused run


def test_launch_reports_bad_config_files(tmp_path):
  (tmp_path / "broken.py").write_text("def get_config(:\n")
  for path, message in ((str(tmp_path / "broken.py"), "syntax error at line 1"),
                        ("configs/missing.py", "cannot be read")):
    result = run_launch("--config", path)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_default_workdir_is_created_under_runs(tiny_data, tmp_path):
  idx_dir, data_dir = tiny_data
  result = run_launch("--config", os.path.join(REPO, "configs", "dense.py"),
                      f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
                      "--config.batch_size=32", "--config.steps_per_epoch=1",
                      "--config.num_epochs=1", "--config.eval_examples=32", cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.exists(tmp_path / "runs" / "dense" / "metrics.jsonl")
  # The progress bar is on by default but stderr here is a pipe, not a terminal: the log
  # gets the epoch's summary line, not the bar's redraws.
  assert "epoch 1/1: train_loss" in result.stderr
  assert "step/s" not in result.stderr and "\r" not in result.stderr


def test_launch_trains_with_overrides_and_resumes(tiny_data, tmp_path):
  idx_dir, data_dir = tiny_data
  # The workdir's parent does not exist yet (as runs/ in a fresh clone): it is made.
  common = ["--config", "configs/denoise.py", "--workdir", str(tmp_path / "runs" / "w"),
            f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
            "--config.batch_size=32", "--config.steps_per_epoch=2", "--config.eval_examples=64",
            "--config.progress_bar=False"]
  result = run_launch(*common, "--config.num_epochs=1")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "epoch 1/1" in result.stderr
  result = run_launch(*common, "--config.num_epochs=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resuming" in result.stderr and "epoch 2/2" in result.stderr
  result = run_launch(*common, "--config.num_epochs=2", "--config.seed=1")
  assert result.returncode == 2 and "another config (differs in seed)" in result.stderr


def test_launch_switches_a_family_on_the_command_line(tiny_data, tmp_path):
  """--config.encoder.name=conv on configs/dense.py stopped with 'unknown config field
  encoder.latent_dim': the dense family's field stayed in the group. Now the group is the new
  family's defaults plus the fields given beside it on the command line."""
  idx_dir, data_dir = tiny_data
  workdir = tmp_path / "w"
  result = run_launch("--config", "configs/dense.py", "--config.encoder.name=conv",
                      "--config.decoder.name=mlp", "--config.decoder.hidden=(16,)",
                      "--workdir", str(workdir), f"--config.data_dir={data_dir}",
                      f"--config.idx_dir={idx_dir}", "--config.batch_size=32",
                      "--config.steps_per_epoch=1", "--config.num_epochs=1",
                      "--config.eval_examples=32", "--config.progress_bar=False")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(workdir / "config.json") as f:
    record = json.load(f)
  assert record["encoder"] == {"name": "conv"}
  assert record["decoder"] == {"name": "mlp", "hidden": [16]}


def test_switch_families_replaces_only_a_switched_group_and_keeps_the_lock():
  from configs import codec  # pylint: disable=import-outside-toplevel
  argv = ["launch.py", "--config", "configs/codec.py", "--config.encoder.analysis.name=convnet",
          "--config.encoder.analysis.features", "(8, 16)", "--config.encoder.filters=(3,)",
          "--config.decoder.name=mlp", "--config.batch_size=8"]
  overrides = config_lib.command_line_overrides(argv)
  assert overrides == {"encoder.analysis.name": "convnet", "encoder.analysis.features": "(8, 16)",
                       "encoder.filters": "(3,)", "decoder.name": "mlp", "batch_size": "8"}
  config = codec.get_config()
  config.lock()
  decoder = config.decoder.to_dict()
  # The nested analysis transform switches; the encoder (still 'factorized') keeps its fields;
  # the decoder is 'mlp' already: kept as the file has it.
  assert config_lib.switch_families(config, overrides) == ["encoder.analysis"]
  assert config.encoder.analysis.to_dict() == {"name": "convnet", "features": (8, 16)}
  assert config.encoder.name == "factorized" and config.decoder.to_dict() == decoder
  with pytest.raises(AttributeError):  # still locked: a typo is still refused
    config.encoder.analysis.featurs = (8,)
  # An outer switch takes the nested group's fields with it.
  config = dense.get_config()
  config_lib.switch_families(config, config_lib.command_line_overrides(
      ["--config.encoder.name=factorized", "--config.encoder.analysis.name=mlp",
       "--config.encoder.analysis.latent_dim=8", "--noconfig.encoder.flag"]))
  assert config.encoder.to_dict() == {"name": "factorized", "flag": False,
                                      "analysis": {"name": "mlp", "latent_dim": 8}}


def test_compiled_steps_go_to_the_cache_dir(tiny_data, tmp_path):
  idx_dir, data_dir = tiny_data
  tiny = ["--config", "configs/dense.py", f"--config.data_dir={data_dir}",
          f"--config.idx_dir={idx_dir}", "--config.batch_size=32", "--config.steps_per_epoch=1",
          "--config.num_epochs=1", "--config.eval_examples=32"]
  cache = tmp_path / "cache"
  result = run_launch(*tiny, "--workdir", str(tmp_path / "a"), f"--compilation_cache_dir={cache}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(os.listdir(cache)) >= 2  # at least the train and eval steps, as files

  # The default place (under XDG_CACHE_HOME) cannot be made: a warning, and the run goes on.
  (tmp_path / "a_file").write_text("")
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  env["XDG_CACHE_HOME"] = str(tmp_path / "a_file")
  result = run_launch(*tiny, "--workdir", str(tmp_path / "b"), env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "warning: no compilation cache" in result.stderr

  # A directory the user names but that cannot be made: one line, exit 2, nothing written.
  result = run_launch(*tiny, "--workdir", str(tmp_path / "c"),
                      f"--compilation_cache_dir={tmp_path / 'a_file' / 'cache'}")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert "error: cannot use compilation cache directory" in result.stderr.strip().splitlines()[-1]
  assert not os.path.exists(tmp_path / "c")


def test_ctrl_c_before_training_is_one_line(tmp_path):
  # Ctrl-C while launch.py imports, loads data or compiles (the training loop turns SIGINT
  # into a stop request instead). Raised here where the data would load: a real signal's
  # moment cannot be chosen (one inside jaxlib's own import can even crash it).
  code = ("import runpy, sys\n"
          "from ae_jax import train\n"
          "def interrupted(*args, **kwargs):\n"
          "  raise KeyboardInterrupt\n"
          "train.train_and_evaluate = interrupted\n"
          f"sys.argv = ['launch.py', '--config', 'configs/dense.py', '--workdir', "
          f"{str(tmp_path / 'w')!r}]\n"
          "runpy.run_path('launch.py', run_name='__main__')\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 130, proc.stderr
  assert proc.stderr.strip().splitlines() == [
      "interrupted: rerun the same command to start (or resume) the run"], proc.stderr


def test_a_field_the_module_takes_joins_its_group_from_the_command_line():
  """configs/wae.py's groups list no kernel_init, which the mlp family takes: the override
  used to stop with 'unknown config field'. Now the field joins the group (nested groups
  too); a field the module does not take, or a group of no module (a VAE's prior), is left
  for the locked config to refuse."""
  from configs import vamp, wae  # pylint: disable=import-outside-toplevel
  config = wae.get_config()
  config.lock()
  overrides = {"decoder.kernel_init": "glorot_uniform", "encoder.net.kernel_init": "he_normal",
               "encoder.net.kernel_nit": "he_normal", "decoder.hidden": "(8,)",
               "batch_size": "8"}
  added = config_lib.add_module_fields(config, overrides)
  assert added == ["decoder.kernel_init", "encoder.net.kernel_init"]
  assert config.decoder.kernel_init == "glorot_uniform"
  assert config.encoder.net.kernel_init == "he_normal"
  assert "kernel_nit" not in config.encoder.net and config.decoder.is_locked
  config = vamp.get_config()
  assert config_lib.add_module_fields(config, {"encoder.prior.nope": "1"}) == []
