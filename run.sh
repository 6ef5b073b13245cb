#!/usr/bin/env bash
# Sets up what is missing, then trains or tests (the README's two commands):
#   ./run.sh train [launch.py flags]   python launch.py --config configs/denoise.py ...
#                                      (or the --config the flags name)
#   ./run.sh test [--fast] [pytest arguments]
#                                      python -m pytest -q -n 2 --dist loadfile ... (two
#                                      workers, a test file each; --fast: -m 'not slow')
#   ./run.sh setup                     the set-up alone
# Each set-up step runs only where needed, so a rerun goes straight to the command:
#   - Debian's dataset-fashion-mnist (the offline data), with root or password-less sudo;
#   - a virtual environment .venv (pythonX.Y-venv first, where Debian's Python lacks it);
#   - pip install -e '.[test]' into it, again only once pyproject.toml has changed.
# Who manages their own environment runs launch.py and pytest directly, as before.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}  # the Python that makes the environment
VENV=${AE_JAX_VENV:-.venv}
DATA=${AE_JAX_DATA_FILE:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
STAMP=$VENV/.ae_jax-installed  # the sha256 of the pyproject.toml installed there
USAGE="usage: ./run.sh train|test|setup [arguments for launch.py or pytest]"

fail() {
  echo "error: $*" >&2
  exit 1
}

[ $# -ge 1 ] || fail "no command: $USAGE"
COMMAND=$1
shift
case $COMMAND in
  train | test | setup) ;;
  *) fail "unknown command '$COMMAND': $USAGE" ;;
esac

# Prints how this user runs apt-get ("" as root, "sudo -n" with password-less sudo); fails
# where it cannot.
apt_prefix() {
  command -v apt-get >/dev/null || return 1
  if [ "$(id -u)" -eq 0 ]; then
    echo ""
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "sudo -n"
  else
    return 1
  fi
}

APT_UPDATED=""
apt_install() {  # $1: the package, $2: what needs it
  local prefix
  prefix=$(apt_prefix) || fail "$2 needs the Debian package $1, which only root can" \
    "install: run 'sudo apt-get install $1', then this command again"
  echo "Installing $1 ($2) ..." >&2
  if [ -z "$APT_UPDATED" ]; then  # a fresh machine may have no package lists yet
    $prefix apt-get update -qq
    APT_UPDATED=1
  fi
  $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1"
}

command -v "$PYTHON" >/dev/null || fail "no $PYTHON on PATH: install Python 3.10 or newer" \
  "(apt-get install python3), or name one with PYTHON=python3.x"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  fail "$("$PYTHON" --version 2>&1) is too old: ae_jax needs Python 3.10 or newer" \
    "(name one with PYTHON=python3.x)"

if [ ! -f "$DATA" ]; then
  apt_install dataset-fashion-mnist "Fashion-MNIST, the offline data"
  [ -f "$DATA" ] || fail "dataset-fashion-mnist is installed but $DATA is missing:" \
    "reinstall it (apt-get install --reinstall dataset-fashion-mnist)"
fi

if ! "$VENV/bin/python" -c '' 2>/dev/null; then  # none yet, or its Python went away
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
    fail "$VENV exists and is not a virtual environment: move it, or name another" \
      "folder with AE_JAX_VENV"
  fi
  echo "Creating the virtual environment $VENV ..." >&2
  if ! out=$("$PYTHON" -m venv --clear "$VENV" 2>&1); then
    rm -rf "$VENV"  # a half-made environment (venv leaves one without pip)
    case $out in
      *ensurepip*)  # Debian and Ubuntu ship venv's pip apart, in pythonX.Y-venv
        version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        apt_install "python$version-venv" "$PYTHON -m venv"
        "$PYTHON" -m venv "$VENV" ;;
      *) fail "$PYTHON -m venv $VENV failed: ${out//$'\n'/ }" ;;
    esac
  fi
fi

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "Installing ae_jax and its packages into $VENV (pip install -e '.[test]'; about" \
    "2.5 GB the first time) ..." >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -e '.[test]'
  echo "$want" >"$STAMP"
fi

case $COMMAND in
  train)
    # configs/denoise.py unless the user names a config: two --config flags would define
    # every --config.x override twice (absl refuses that).
    for arg in "$@"; do
      case $arg in --config | --config=*) exec "$VENV/bin/python" launch.py "$@" ;; esac
    done
    exec "$VENV/bin/python" launch.py --config configs/denoise.py "$@" ;;
  test)
    args=()
    for arg in "$@"; do  # --fast: the edit loop's tier, without the runs (tests/conftest.py)
      if [ "$arg" = --fast ]; then args+=(-m "not slow"); else args+=("$arg"); fi
    done
    # Two workers pay on 2 cores (compiles and tfds are largely single-threaded); a file
    # stays on one worker so its module fixtures (trained runs) are made once (with
    # --dist loadgroup, xdist made some of them twice: 16-24 s each). The files go out
    # longest first, in tests/conftest.py's order (--no-loadscope-reorder keeps it).
    exec "$VENV/bin/python" -m pytest -q -n "${AE_JAX_TEST_WORKERS:-2}" --dist loadfile \
      --no-loadscope-reorder ${args[@]+"${args[@]}"} ;;
  setup) echo "Set up: run '$VENV/bin/python launch.py ...', or 'source $VENV/bin/activate'." >&2 ;;
esac
