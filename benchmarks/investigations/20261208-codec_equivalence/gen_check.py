"""shared_gen gives the same numbers in both venvs: dumps steps 0, 1, 999 to gen_<tag>.npz."""
import sys, numpy as np
sys.path.insert(0, "/tmp/codecgap"); import shared_gen
out = {}
for s in (0, 1, 999):
  for n, a in zip(("idx", "z", "y"), shared_gen.batch(s)): out[f"{n}{s}"] = a
np.savez(f"/tmp/codecgap/gen_{sys.argv[1]}.npz", **out); print(np.__version__)
