"""./run.sh, the README's two commands: each set-up step only where needed, and one line
where the user must act. Stand-ins for the environment's Python, apt-get, id and sudo keep
these fast and offline."""
import hashlib
import os
import subprocess
import sys

import pytest

from conftest import REPO


def _script(path, body: str) -> None:
  path.write_text("#!/bin/bash\n" + body)
  path.chmod(0o755)


@pytest.fixture
def env(tmp_path):
  """Runs ./run.sh with a stand-in environment (its python logs its arguments), data that is
  present and a bin/ folder ahead on PATH for stand-in tools; returns a function of the
  arguments giving (the CompletedProcess, the logged lines)."""
  log = tmp_path / "log"
  venv = tmp_path / "venv"
  (venv / "bin").mkdir(parents=True)
  (venv / "pyvenv.cfg").write_text("")
  _script(venv / "bin" / "python", f'echo "python $*" >> {log}\n')
  (tmp_path / "bin").mkdir()
  data = tmp_path / "train-images-idx3-ubyte.gz"
  data.write_bytes(b"")
  variables = dict(os.environ, AE_JAX_VENV=str(venv), AE_JAX_DATA_FILE=str(data),
                   PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")

  def run(*args, **overrides):
    done = subprocess.run([os.path.join(REPO, "run.sh"), *args], capture_output=True,
                          text=True, env=dict(variables, **overrides), cwd=tmp_path)
    lines = log.read_text().splitlines() if log.exists() else []
    return done, [line for line in lines if line != "python -c "]  # the health check

  return run


def test_pip_runs_once_until_pyproject_changes_and_commands_get_their_arguments(env, tmp_path):
  done, log = env("setup")
  assert done.returncode == 0, done.stderr
  assert log == ["python -m pip install --disable-pip-version-check -e .[test]"]
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    assert (tmp_path / "venv" / ".ae_jax-installed").read_text().strip() == (
        hashlib.sha256(f.read()).hexdigest())
  done, log = env("test", "-k", "resume")  # the rerun skips pip
  assert done.returncode == 0, done.stderr
  assert log[1:] == ["python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -k resume"]
  done, log = env("test", "--fast", "-x")  # the edit loop's tier
  assert log[2:] == ["python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m not slow -x"]
  done, log = env("train", "--config.num_epochs=1")
  assert log[3:] == ["python launch.py --config configs/denoise.py --config.num_epochs=1"]
  done, log = env("train", "--config", "configs/dense.py", "--config.num_epochs=1")
  assert log[4:] == ["python launch.py --config configs/dense.py --config.num_epochs=1"]
  done, log = env("train", "--config=configs/conv.py")
  assert log[5:] == ["python launch.py --config=configs/conv.py"]
  (tmp_path / "venv" / ".ae_jax-installed").write_text("an older pyproject.toml\n")
  done, log = env("setup")
  assert log[6:] == ["python -m pip install --disable-pip-version-check -e .[test]"]


def test_missing_data_without_root_says_what_to_run_and_sets_up_nothing(env, tmp_path):
  _script(tmp_path / "bin" / "id", "echo 1000\n")
  _script(tmp_path / "bin" / "sudo", "exit 1\n")  # a password would be needed
  done, log = env("train", AE_JAX_DATA_FILE=str(tmp_path / "missing.gz"))
  assert done.returncode == 1 and log == []
  assert done.stderr == (
      "error: Fashion-MNIST, the offline data needs the Debian package dataset-fashion-mnist, "
      "which only root can install: run 'sudo apt-get install dataset-fashion-mnist', then "
      "this command again\n")


def test_missing_data_is_installed_as_root(env, tmp_path):
  missing = tmp_path / "missing.gz"
  _script(tmp_path / "bin" / "id", "echo 0\n")
  _script(tmp_path / "bin" / "apt-get",
          f'echo "apt-get $*" >> {tmp_path / "apt"}\n'
          f'[ "$1" = install ] && touch {missing}\nexit 0\n')
  done, log = env("setup", AE_JAX_DATA_FILE=str(missing))
  assert done.returncode == 0, done.stderr
  assert (tmp_path / "apt").read_text().splitlines() == [
      "apt-get update -qq", "apt-get install -y -qq dataset-fashion-mnist"]
  assert log == ["python -m pip install --disable-pip-version-check -e .[test]"]


def test_a_python_without_ensurepip_names_the_debian_package(env, tmp_path):
  """Debian's and Ubuntu's Python make no venv until pythonX.Y-venv is installed."""
  _script(tmp_path / "bin" / "python3",
          'if [ "$1 $2" = "-m venv" ]; then\n'
          '  echo "The virtual environment was not created successfully because ensurepip is '
          'not available."; exit 1\nfi\n'
          f'exec {sys.executable} "$@"\n')
  _script(tmp_path / "bin" / "id", "echo 1000\n")
  _script(tmp_path / "bin" / "sudo", "exit 1\n")
  done, _ = env("setup", AE_JAX_VENV=str(tmp_path / "new_venv"))
  version = "%d.%d" % sys.version_info[:2]
  assert done.returncode == 1
  assert done.stderr.splitlines()[-1] == (
      f"error: python3 -m venv needs the Debian package python{version}-venv, which only root "
      f"can install: run 'sudo apt-get install python{version}-venv', then this command again")
  assert not (tmp_path / "new_venv").exists()


def test_an_unknown_command_is_one_line():
  done = subprocess.run([os.path.join(REPO, "run.sh"), "trian"], capture_output=True,
                        text=True)
  assert done.returncode == 1
  assert done.stderr == ("error: unknown command 'trian': usage: ./run.sh train|test|setup "
                         "[arguments for launch.py or pytest]\n")
