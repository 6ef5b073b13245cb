"""The one exception type for mistakes a user can fix, a full disk told as one of them, and
how the command-line tools end."""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import sys
from typing import Callable, Iterator


class UserError(Exception):
  """A bad config, missing data, unusable workdir...: the message says what to do."""


def describe(e: BaseException, limit: int = 200) -> str:
  """'Type: first line of the message' (at most `limit` characters of it), for one-line errors
  that pass on what a library said."""
  first = (str(e).splitlines() or [""])[0]
  # Orbax appends a pointer that prints as a bound method's repr, useless to a user.
  first = first.split(" See full TensorStore details:")[0]
  return f"{type(e).__name__}: {first[:limit]}"


# ------------------------------------------------------------------ a full disk

# The errors of a write that the user fixes on the disk, not in the command: what each
# asks them to do (FLAG: the option that chose where the write went).
DISK_FIXES = {
    errno.ENOSPC: "free space or choose another {flag}",
    errno.EDQUOT: "free space or choose another {flag}",
    errno.EROFS: "choose a writable {flag}",
    errno.EIO: "check the disk, or choose another {flag}",
}
# How orbax and TensorStore word them: they raise their own exceptions, with the OSError's
# text in the message (a full disk: '... RESOURCE_EXHAUSTED ... No space left on device').
_DISK_WORDS = {os.strerror(n): n for n in DISK_FIXES}


def disk_errno(e: BaseException) -> int | None:
  """The errno of `e` when it (or an exception it was raised from) is a write refused by the
  disk (full, over quota, read-only, failing: DISK_FIXES), else None."""
  seen = 0
  while e is not None and seen < 10:
    if isinstance(e, OSError) and e.errno in DISK_FIXES:
      return e.errno
    text = str(e)
    for words, number in _DISK_WORDS.items():
      if words in text:
        return number
    e, seen = e.__cause__ or e.__context__, seen + 1
  return None


class DiskError(UserError):
  """A write the disk refused: 'cannot write WHAT to WHERE: No space left on device: free
  space or choose another --workdir'."""

  def __init__(self, what: str, where: str, number: int, flag: str = "--workdir"):
    super().__init__(f"cannot write {what} to {where}: {os.strerror(number)}: "
                     + DISK_FIXES[number].format(flag=flag))
    self.errno = number


def unnamed_disk_error(e: OSError, flag: str, folder: str) -> DiskError | None:
  """The `DiskError` of an OSError no `writing` named (its own file name, else `folder`), or
  None when the disk did not refuse it: the commands' last resort before a traceback."""
  number = disk_errno(e)
  if number is None:
    return None
  if e.filename:
    path = os.path.abspath(os.fsdecode(e.filename))
    return DiskError(os.path.basename(path), os.path.dirname(path), number, flag)
  return DiskError("a file", folder, number, flag)


@contextlib.contextmanager
def writing(what: str, where: str, flag: str = "--workdir") -> Iterator[None]:
  """Inside, a write the disk refuses (see `disk_errno`) becomes a one-line `DiskError`
  naming `what` was being written `where`; other errors pass unchanged."""
  try:
    yield
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (orbax wraps OSError in its own)
    number = disk_errno(e)
    if number is None:
      raise
    raise DiskError(what, where, number, flag) from None


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
  except OSError as e:  # a write no `writing` named: still one line, where it went
    error = unnamed_disk_error(e, "--out", "--out")
    if error is None:
      raise
    return print_error(error)
  if isinstance(outcome, Report):
    return print_report(outcome.path, outcome.last_line)
  if isinstance(outcome, str):
    print(outcome)
    return 0
  return outcome or 0
