"""The one exception type for mistakes a user can fix, and how the command-line tools end."""
from __future__ import annotations

import dataclasses
import sys
from typing import Callable


class UserError(Exception):
  """A bad config, missing data, unusable workdir...: the message says what to do."""


def describe(e: BaseException, limit: int = 200) -> str:
  """'Type: first line of the message' (at most `limit` characters of it), for one-line errors
  that pass on what a library said."""
  first = (str(e).splitlines() or [""])[0]
  # Orbax appends a pointer that prints as a bound method's repr, useless to a user.
  first = first.split(" See full TensorStore details:")[0]
  return f"{type(e).__name__}: {first[:limit]}"


def print_error(e: UserError) -> int:
  """Prints the mistake as one line on stderr; returns the tools' exit status for it (2)."""
  print(f"error: {e}", file=sys.stderr)
  return 2


def print_report(path: str, last_line: str) -> int:
  """Prints a tool's markdown report, then `last_line`; returns the success status (0)."""
  with open(path) as f:
    print(f.read(), end="")
  print(last_line)
  return 0


@dataclasses.dataclass(frozen=True)
class Report:
  """What a tool that wrote a markdown report prints at the end: the report, then a line."""
  path: str
  last_line: str


def run_cli(work: Callable[[], Report | str | int | None]) -> int:
  """Runs a command-line tool's work and ends it the one way they all end: a `UserError` as
  one line (exit status 2); else the `Report` it returns printed, or the line it returns
  printed, or the exit status it returns (None: 0, the work printed its own lines)."""
  try:
    outcome = work()
  except UserError as e:
    return print_error(e)
  if isinstance(outcome, Report):
    return print_report(outcome.path, outcome.last_line)
  if isinstance(outcome, str):
    print(outcome)
    return 0
  return outcome or 0
