"""Shared inputs of the 100-step runs: batch indices into the Fashion-MNIST train split
(32 per step) and the uniform noise of z and y per step (NHWC), seeded; batches.npz."""
import numpy as np
STEPS, B = 200, 32
rng = np.random.default_rng(2024)
idx = rng.permutation(60000)[:STEPS * B].reshape(STEPS, B)
zn = rng.uniform(-0.5, 0.5, (STEPS, B, 1, 1, 64)).astype(np.float32)
yn = rng.uniform(-0.5, 0.5, (STEPS, B, 4, 4, 96)).astype(np.float32)
np.savez("/tmp/codecgap/batches.npz", idx=idx, z_noise=zn, y_noise=yn)
