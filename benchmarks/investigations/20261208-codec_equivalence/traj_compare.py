"""Per-step relative differences of the 100-step trajectories (loss, mse, bpp, gnorm):
  python traj_compare.py A.npz B.npz"""
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
n = min(len(a['loss']), len(b['loss']))
for k in ('loss', 'mse', 'bpp', 'gnorm'):
  r = np.abs(a[k][:n] - b[k][:n]) / np.abs(b[k][:n])
  first = int(np.argmax(r > 1e-3)) if (r > 1e-3).any() else None
  print(f"{k:6s} max {r.max():.2e} (step {r.argmax()}); steps 0/9/49/99: " +
        " ".join(f"{r[j]:.1e}" for j in (0, 9, 49, n - 1)) + f"; first step > 1e-3: {first}")
