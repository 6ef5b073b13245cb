"""README's "Add your own model": its two files and its command, run exactly as written
(from a folder of the user's, with only the flags that shrink the run to a few steps on
the tiny dataset appended), then the codec tools on the run, from the same folder."""
import json
import os
import re
import shlex
import subprocess
import sys

from conftest import REPO


def _section() -> str:
  with open(os.path.join(REPO, "README.md")) as f:
    text = f.read()
  return text.split("## Add your own model\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_example_trains_and_compresses_with_the_users_module(tiny_data, tmp_path):
  section = _section()
  files = {m.group(1): m.group(0)[len("```python\n"):-len("```")]
           for m in re.finditer(r"```python\n# (\S+\.py)\n.*?```", section, re.S)}
  assert set(files) == {"my_models.py", "my_config.py"}
  for name, code in files.items():
    (tmp_path / name).write_text(code)
  (command,) = re.findall(r"```bash\n(.*?)\n```", section, re.S)
  argv = shlex.split(command)
  assert argv[:2] == ["python", "launch.py"]
  idx_dir, data_dir = tiny_data
  shrink = [f"--config.data_dir={data_dir}", f"--config.idx_dir={idx_dir}",
            "--config.batch_size=32", "--config.steps_per_epoch=3", "--config.num_epochs=1",
            "--config.eval_examples=64", "--config.progress_bar=False"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, os.path.join(REPO, "launch.py"), *argv[2:], *shrink],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  workdir = tmp_path / "runs" / "wide"
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["encoder"] == {"name": "my_models:WideEncoder", "width": 256, "latent_dim": 64}
  # The decoder's image_shape, left out of the config, came from the dataset.
  assert saved["decoder"] == {"name": "my_models:WideDecoder", "width": 512}
  row = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[-1])
  assert row["val_loss"] > row["val_reconstruction"] and row["val_l2"] > 0  # the term counted
  # The tools rebuild the user's module from config.json (run from the same folder).
  codes = tmp_path / "codes.aec"
  tool = [sys.executable, "-m", "ae_jax.compress"]
  env["PYTHONPATH"] = REPO
  for args in (["encode", "--workdir", "runs/wide", "--dataset", "fashion_mnist",
                "--data_dir", data_dir, "--max_images", "8", "--out", str(codes)],
               ["decode", "--workdir", "runs/wide", "--codes", str(codes), "--out", "restored"]):
    done = subprocess.run([*tool, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
  assert len(os.listdir(tmp_path / "restored")) == 8
