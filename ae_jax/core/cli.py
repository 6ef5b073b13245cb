"""What the command-line tools share: one-line argparse errors, quiet library logs, the
options that say where a run's dataset is now (`ae_jax.training.runs.run_dataset` reads them)."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
  """argparse type: an integer >= 1."""
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
  return value


def quiet_logs() -> None:
  """Keeps library chatter (tfds, orbax via absl) off stderr, where errors are one line."""
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.ERROR)


class OneLineParser(argparse.ArgumentParser):
  """argparse that reports a bad command line in one line (and exit code 2)."""

  def error(self, message):
    self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_run_data_flags(p: argparse.ArgumentParser) -> None:
  """--data_dir / --idx_dir for the tools that read a run's own dataset (its config.json
  says where; these say where it is now, e.g. on another machine)."""
  p.add_argument("--data_dir", help="tfds data_dir holding the run's dataset (default: the "
                 "run's config.json data_dir)")
  p.add_argument("--idx_dir", help="folder of the dataset's four MNIST-format IDX files, to "
                 "prepare it from when data_dir lacks it (default: the run's)")
