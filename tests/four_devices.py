"""The families harness's 4-device runs, trained one after another in one process beside the
test's own runs (tests/test_families.py starts it once for the families it runs):

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \
        python tests/four_devices.py ROOT IDX_DIR DATA_DIR FAMILY...

Each family's config (test_families._config, one epoch) trains in ROOT/FAMILY; then
ROOT/FAMILY.done, or ROOT/FAMILY.failed holding the traceback, says that it ended."""
import os
import sys
import traceback

# This checkout's ae_jax first (test_families imports it before conftest puts the repo on the
# path: an editable install elsewhere would otherwise be the one imported), then tests/.
sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]


def main(root: str, idx_dir: str, data_dir: str, families: list[str]) -> None:
  import jax  # pylint: disable=import-outside-toplevel
  import test_families  # pylint: disable=import-outside-toplevel  (conftest's JAX settings)
  from ae_jax.training import train  # pylint: disable=import-outside-toplevel
  assert jax.device_count() == 4, jax.devices()
  for family in families:
    workdir = os.path.join(root, family)
    try:
      config = test_families._config(family, (idx_dir, data_dir), workdir)  # pylint: disable=protected-access
      config.num_epochs = 1
      train.train_and_evaluate(config, workdir)
      marker, text = ".done", ""
    except Exception:  # pylint: disable=broad-except  (the test reports it)
      marker, text = ".failed", traceback.format_exc()
    with open(workdir + ".tmp", "w") as f:
      f.write(text)
    os.replace(workdir + ".tmp", workdir + marker)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
