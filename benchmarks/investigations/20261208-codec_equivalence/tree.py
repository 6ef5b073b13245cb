import os
os.environ["XLA_FLAGS"]="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
import sys; sys.path.insert(0,"/work/main")
import jax, jax.numpy as jnp
from configs import hyperprior as hp
from ae_jax.models import registry
cfg = hp.get_config("0.4")
rec = cfg.to_dict(); rec["encoder"]["filters"]=(3,3,3,3)
model, code = registry.checked_autoencoder(rec, (32,32,1))
print(code)
p = model.init(registry.shape_rngs(), jnp.zeros((2,32,32,1)))["params"]
print(jax.tree_util.tree_map(lambda a: a.shape, p))
