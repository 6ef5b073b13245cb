"""The progress line of long commands: drawn on a terminal only, one line at a time, and
dataset preparation without tfds' nested bars."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from conftest import REPO, write_idx_folder

BAR = """
import sys, time
from ae_jax.core import progress
with progress.bar(2, "measuring", "codec") as line:
  print("a line of its own", file=sys.stderr)
  with progress.bar(5, "inner", "image") as inner:  # inside another: not drawn
    inner.update(5)
  line.update(2)
print("after", file=sys.stderr)
"""


def _stderr_of(code: str, terminal: bool) -> str:
  """What `code` writes to stderr, a terminal (80 columns) or a pipe."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  if not terminal:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1500:]
    return done.stderr
  master, slave = pty.openpty()
  fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stderr=slave,
                          stdout=subprocess.DEVNULL)
  os.close(slave)
  chunks = []
  while True:
    try:
      chunk = os.read(master, 65536)
    except OSError:  # the child closed the terminal
      break
    if not chunk:
      break
    chunks.append(chunk)
  os.close(master)
  assert proc.wait() == 0
  return b"".join(chunks).decode()


def test_a_bar_is_drawn_on_a_terminal_only_and_lines_scroll_above_it():
  shown = _stderr_of(BAR, terminal=True)
  assert "\rmeasuring:   0%|" in shown and "0/2 [" in shown
  assert "inner" not in shown  # one line at a time
  assert "a line of its own\r\n" in shown and shown.endswith("\rafter\r\n")  # bar cleared
  assert _stderr_of(BAR, terminal=False) == "a line of its own\nafter\n"


@pytest.mark.parametrize("terminal", [True, False])
def test_preparing_a_dataset_shows_one_line_of_ours_and_no_tfds_bars(tmp_path, terminal):
  idx_dir = write_idx_folder(str(tmp_path / "idx"), n_train=64, n_test=16)
  code = f"""
from ae_jax.data import pipeline as data
data.get_builder("fashion_mnist", {str(tmp_path / "tfds")!r}, {idx_dir!r})
"""
  shown = _stderr_of(code, terminal)
  assert "Generating" not in shown and "Shuffling" not in shown  # tfds' bars
  if terminal:
    assert "\rpreparing fashion_mnist:   0%|" in shown and "0/80 [" in shown
  else:
    assert shown == ""
