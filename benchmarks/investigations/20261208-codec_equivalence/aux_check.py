"""Does the peer's aux optimizer (quantiles) touch the main parameters? Compares the
100-step unclipped peer run with and without the aux step (peer_train.py --no_aux)."""
import numpy as np
a = dict(np.load('/tmp/codecgap/train_peer_noclip.npz')); b = dict(np.load('/tmp/codecgap/train_peer_noclip_noaux.npz'))
diff = [k for k in a if k.startswith('final/') and not k.endswith('quantiles') and not np.array_equal(a[k], b[k])]
print("main params differing (bitwise) with/without the aux step:", diff)
print("quantiles equal:", np.array_equal(a['final/entropy_bottleneck.quantiles'], b['final/entropy_bottleneck.quantiles']))
print("loss/mse/bpp trajectories bitwise equal:", all(np.array_equal(a[k], b[k]) for k in ('loss', 'mse', 'bpp', 'gnorm')))
