"""Stop signals during training: the first SIGTERM or Ctrl-C asks for a clean stop, the second
ends the process at once.

The first signal only sets a flag that the loop reads between jit calls: it then saves a
checkpoint of the current step and raises `Interrupted` (tests/test_resume.py). A flag alone
cannot end a run stuck inside one long call, though: Python runs a signal handler in the main
thread between bytecodes only, and a thread blocked in XLA (a slow jitted call, a transfer
that never completes) runs none. Measured (issue #28): configs/vae.py with a latent_dim of
1e8 sat 14 minutes at 0% CPU in `int(state.step)`, two SIGTERMs ignored, until SIGKILL. So the
second signal is counted by a watcher thread instead, woken by the bytes CPython's C-level
handler writes to `signal.set_wakeup_fd` the moment a signal arrives, whatever the main
thread is doing; the thread prints one line and calls `os._exit(128 + signum)`. What that
skips is what SIGKILL skips, and a SIGKILL at any moment resumes exactly (scripts/kill_resume.py):
orbax writes a checkpoint under a temporary name and renames it whole, and the run lock is
an flock the kernel releases.
"""
from __future__ import annotations

import os
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The line the second signal prints (launch.py's style: what happened, then what to do).
AT_ONCE = ("interrupted at once by a second {name}: the steps since the last checkpoint are "
           "lost; rerun the same command to resume from it (or start over where none was "
           "saved)")


class Interrupted(Exception):
  """SIGTERM/SIGINT arrived: a checkpoint of the current step was saved and waited for."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"stopped by signal {signum} at step {step}; the checkpoint is saved: "
                     "rerun the same command to resume")
    self.signum, self.step = signum, step


class StopRequests:
  """Inside, SIGTERM and SIGINT set `signum` (the loop checks it between jit calls); a second
  one ends the process at once (exit status 128 + its number, one line on stderr).

  Outside the main thread it does nothing (Python delivers signals to the main thread only).
  A signal the parent set to be ignored (a shell's background job: SIGINT) stays ignored.
  On exit the previous handlers and wakeup fd are back and the watcher thread has ended.
  """

  def __init__(self):
    self.signum: int | None = None
    self._old_handlers: dict = {}
    self._old_wakeup_fd = -1
    self._pipe: tuple[int, int] | None = None
    self._watcher: threading.Thread | None = None

  def __enter__(self) -> StopRequests:
    if threading.current_thread() is not threading.main_thread():
      return self
    for sig in STOP_SIGNALS:
      if signal.getsignal(sig) is not signal.SIG_IGN:
        self._old_handlers[sig] = signal.signal(sig, self._handle)
    if self._old_handlers:
      read_fd, write_fd = os.pipe()
      os.set_blocking(write_fd, False)  # set_wakeup_fd's requirement: a full pipe never blocks
      self._pipe = (read_fd, write_fd)
      self._old_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
      self._watcher = threading.Thread(target=self._watch, name="ae_jax-stop-signals",
                                       daemon=True)
      self._watcher.start()
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if self.signum is None:  # the watcher ends the process on the second
      self.signum = signum

  def _watch(self) -> None:
    """Counts stop signals as they arrive (blocked in os.read, the GIL released) and ends
    the process at the second; returns when __exit__ closes the pipe."""
    read_fd = self._pipe[0]
    seen = 0
    while True:
      try:
        got = os.read(read_fd, 64)
      except OSError:  # closed under us
        return
      if not got:
        return
      for signum in got:
        if signum in self._old_handlers:
          seen += 1
          if seen >= 2:
            self._end_now(signum)

  @staticmethod
  def _end_now(signum: int) -> None:
    message = AT_ONCE.format(name=signal.Signals(signum).name)
    try:
      os.write(2, (message + "\n").encode())
    finally:
      os._exit(128 + signum)  # pylint: disable=protected-access

  def __exit__(self, *exc) -> None:
    if self._pipe is not None:
      signal.set_wakeup_fd(self._old_wakeup_fd)
      read_fd, write_fd = self._pipe
      os.close(write_fd)  # the watcher reads end-of-file and returns
      self._watcher.join()
      os.close(read_fd)
      self._pipe = self._watcher = None
    for sig, handler in self._old_handlers.items():
      signal.signal(sig, handler)
    self._old_handlers = {}
