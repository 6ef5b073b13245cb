"""The one exception type for mistakes a user can fix, a full disk and a lack of memory
told as ones, stop signals turned into exceptions (so that what was being written is
removed), and how the command-line tools end."""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import signal
import sys
import threading
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


# --------------------------------------------------------------- out of memory

def out_of_memory(e: BaseException) -> str | None:
  """What could not be allocated ('30.8 GB', or '' when the message does not say) when `e`
  is XLA's or numpy's out-of-memory error, else None: the commands' last resort when a
  model or batch passed the checks made before compiling (`ae_jax.models.footprint`)."""
  text = str(e)
  if isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED: Out of memory" in text:
    found = re.search(r"allocat\w* (\d+) bytes", text)
    if found:
      return format_bytes(int(found.group(1)))
    found = re.search(r"allocate ([\d.]+ \w?i?B)", text)  # numpy: 'Unable to allocate 373. GiB'
    return found.group(1) if found else ""
  return None


def format_bytes(n: float) -> str:
  """'30.8 GB', '512 kB': decimal units, three significant digits."""
  for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if n >= size:
      return f"{n / size:.3g} {unit}"
  return f"{int(n)} B"


class OutOfMemory(UserError):
  """An allocation XLA or numpy refused: 'ran out of memory allocating 30.8 GB: FIX'."""

  def __init__(self, size: str, fix: str):
    super().__init__(f"ran out of memory{f' allocating {size}' if size else ''}: {fix}")


# ----------------------------------------------------------------- stop signals

class Stopped(BaseException):
  """SIGTERM or SIGHUP arrived: raised in the main thread, as KeyboardInterrupt is for
  SIGINT, so that the `finally` and `except BaseException` blocks on the way out remove
  what was being written (Python's default for SIGTERM ends the process where it stands,
  leaving half-written files and temporary folders)."""

  def __init__(self, signum: int):
    super().__init__(f"signal {signum}")
    self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stops_raise() -> Iterator[None]:
  """Inside, SIGTERM and SIGHUP raise `Stopped` (a handler set inside, such as the training
  loop's, takes over until it restores this one); the handlers before are restored after.
  A signal the parent set to be ignored stays ignored; off the main thread nothing changes."""
  old = {}
  if threading.current_thread() is threading.main_thread():
    for sig in STOP_SIGNALS:
      if signal.getsignal(sig) is not signal.SIG_IGN:
        old[sig] = signal.signal(sig, _raise_stopped)
  try:
    yield
  finally:
    for sig, handler in old.items():
      signal.signal(sig, handler)


def _raise_stopped(signum, frame):  # pylint: disable=unused-argument
  raise Stopped(signum)


def stop_status(e: BaseException) -> int:
  """The shell's exit status of a process ended by the signal behind `e` (128 + signum)."""
  return 128 + getattr(e, "signum", signal.SIGINT)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
  """Inside, SIGTERM, SIGHUP and SIGINT wait (they are delivered on leaving): for the few
  renames that put a set of files in place, which must not be cut half-way."""
  sigs = {signal.SIGINT, *STOP_SIGNALS}
  main = threading.current_thread() is threading.main_thread()
  before = signal.pthread_sigmask(signal.SIG_BLOCK, sigs) if main else None
  try:
    yield
  finally:
    if main:
      signal.pthread_sigmask(signal.SIG_SETMASK, before)


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


INTERRUPTED = ("interrupted ({signal}): no output was left half-written: rerun the same "
               "command")


def run_cli(work: Callable[[], Report | str | int | None]) -> int:
  """Runs a command-line tool's work and ends it the one way they all end: a `UserError` as
  one line (exit status 2), a stop signal as one line (128 + its number: the outputs being
  written are removed on the way out, `stops_raise`); else the `Report` it returns
  printed, or the line it returns printed, or the exit status it returns (None: 0, the
  work printed its own lines)."""
  try:
    with stops_raise():
      outcome = work()
  except UserError as e:
    return print_error(e)
  except (KeyboardInterrupt, Stopped) as e:
    print(INTERRUPTED.format(signal=signal.Signals(stop_status(e) - 128).name),
          file=sys.stderr)
    return stop_status(e)
  except OSError as e:  # a write no `writing` named: still one line, where it went
    error = unnamed_disk_error(e, "--out", "--out")
    if error is None:
      raise
    return print_error(error)
  except Exception as e:  # pylint: disable=broad-except  (XLA's errors have no own type)
    size = out_of_memory(e)
    if size is None:
      raise
    return print_error(OutOfMemory(size, "use fewer images per batch (--batch_size where the "
                                         "tool has it), or a machine with more memory"))
  if isinstance(outcome, Report):
    return print_report(outcome.path, outcome.last_line)
  if isinstance(outcome, str):
    print(outcome)
    return 0
  return outcome or 0
