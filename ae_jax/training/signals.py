"""Stop signals during training: SIGTERM or Ctrl-C asks the loop for a clean stop."""
from __future__ import annotations

import signal
import threading


class Interrupted(Exception):
  """SIGTERM/SIGINT arrived: a checkpoint of the current step was saved and waited for."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"stopped by signal {signum} at step {step}; the checkpoint is saved: "
                     "rerun the same command to resume")
    self.signum, self.step = signum, step


class StopRequests:
  """Turns SIGTERM and SIGINT into a flag the loop checks between jit calls."""

  def __init__(self):
    self.signum = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        # A signal the parent set to be ignored (a shell's background job: SIGINT) stays so.
        if signal.getsignal(sig) is not signal.SIG_IGN:
          self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)
