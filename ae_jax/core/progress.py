"""The progress line of long commands, in the style of training's epoch bar."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import tqdm
from tqdm.contrib import DummyTqdmFile


_drawing = False  # a line is on the screen: bars opened meanwhile stay hidden


@contextlib.contextmanager
def bar(total: int | None, desc: str, unit: str) -> Iterator[tqdm.tqdm]:
  """One tqdm line on stderr, drawn on a terminal only (logs get none of it) and cleared at
  the end. Lines printed to stderr meanwhile (a sweep's epoch lines) scroll above it
  instead of breaking it, and a bar opened inside it (the dataset preparation in a sweep's
  first run) is not drawn: one line at a time."""
  global _drawing  # pylint: disable=global-statement
  stderr = sys.stderr
  with tqdm.tqdm(total=total, desc=desc, unit=unit, leave=False, file=stderr,
                 disable=True if _drawing else None) as line:  # None: on a terminal only
    if line.disable:
      yield line
      return
    sys.stderr = DummyTqdmFile(stderr)  # prints through tqdm.write, above the bar
    _drawing = True
    try:
      yield line
    finally:
      sys.stderr, _drawing = stderr, False
