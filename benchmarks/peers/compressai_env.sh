#!/bin/bash
# CompressAI's own virtual environment for the codec peer (benchmarks/peers/compressai_codec.py):
#
#   bash benchmarks/peers/compressai_env.sh            # -> benchmarks/.venv-compressai
#   VENV=/elsewhere bash benchmarks/peers/compressai_env.sh
#
# compressai 1.2.8 (cp311 wheel on PyPI) requires numpy>=1.21,<2 and torch>=1.13.1 (plus
# torchvision and torch-geometric, which its package __init__ imports); jax needs numpy>=2,
# so it cannot live in ae_jax's environment. torch is pinned to the bench extra's 2.13.0 and
# torchvision to its pair, 0.28.0, both as PyPI builds them: with CUDA 13 (~4 GB with the
# nvidia-* wheels; it runs on a CPU-only machine). PyPI has no CPU-only torchvision, and a
# CPU torch (the dev VM's PIP_FIND_LINKS=/opt/wheels holds 2.13.0+cpu) beside PyPI's
# torchvision fails at `import compressai` (its registry imports torchvision.transforms):
# "operator torchvision::nms does not exist", as torchvision's ops library needs
# libtorch_cuda.so. So pip runs --isolated (no PIP_* variables). Where
# download.pytorch.org is reachable, PIP_EXTRA="--index-url https://download.pytorch.org/whl/cpu
# --extra-index-url https://pypi.org/simple" gives the CPU pair instead.
# Re-running the script on an existing venv only installs what is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VENV:-$here/../.venv-compressai}"
python="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --isolated --quiet ${PIP_EXTRA:-} \
  "compressai==1.2.8" "numpy>=1.21,<2" "torch==2.13.0" "torchvision==0.28.0"
"$venv/bin/python" -c "import compressai, numpy, torch; print('compressai', compressai.__version__, \
'numpy', numpy.__version__, 'torch', torch.__version__)"
(cd "$venv" && pwd)
