"""The package layout is the architecture: each package of ae_jax imports only the packages
below it (ae_jax/__init__.py lists them), at module level or inside functions alike."""
import ast
import os

import pytest

from conftest import REPO

# What each package may import (besides itself).
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "data": {"core"},
    "training": {"core", "models", "data"},
    "compression": {"core", "models", "data", "training"},
    "evaluation": {"core", "models", "data", "training", "compression"},
}
PACKAGE_ROOT = os.path.join(REPO, "ae_jax")


def _imports(path: str) -> list[tuple[int, str]]:
  """(line, 'ae_jax.pkg...') of every ae_jax import in a file."""
  out = []
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ae_jax"):
      names = [node.module] if node.module != "ae_jax" else [f"ae_jax.{a.name}" for a in node.names]
      out += [(node.lineno, n) for n in names]
    elif isinstance(node, ast.Import):
      out += [(node.lineno, a.name) for a in node.names if a.name.startswith("ae_jax")]
  return out


def _package_files():
  for package in ALLOWED:
    folder = os.path.join(PACKAGE_ROOT, package)
    for name in sorted(os.listdir(folder)):
      if name.endswith(".py"):
        yield package, os.path.join(folder, name)


@pytest.mark.parametrize("package,path", list(_package_files()),
                         ids=lambda v: os.path.relpath(v, PACKAGE_ROOT) if "/" in str(v) else v)
def test_a_package_imports_only_the_packages_below_it(package, path):
  wrong = []
  for line, name in _imports(path):
    parts = name.split(".")
    target = parts[1] if len(parts) > 1 else "ae_jax"
    if target != package and target not in ALLOWED[package]:
      wrong.append(f"line {line}: {name}")
  assert not wrong, f"{os.path.relpath(path, REPO)} reaches up or sideways: {wrong}"


def test_every_module_lives_in_a_package_or_is_a_command():
  """Top-level modules are the thin entry points of `python -m ae_jax.<tool>` only."""
  commands = {"compress", "rate_distortion", "rd_compare", "sweep", "out_of_domain", "latent",
              "likelihood", "sample", "code_table", "classifier", "frechet"}
  top = {n[:-3] for n in os.listdir(PACKAGE_ROOT) if n.endswith(".py")} - {"__init__"}
  assert top == commands
  for name in commands:
    body = open(os.path.join(PACKAGE_ROOT, name + ".py")).read()
    assert len(body.splitlines()) <= 12, f"ae_jax/{name}.py is an entry point, not a tool"


def test_every_package_says_what_it_holds_and_may_import():
  for package in ALLOWED:
    doc = ast.get_docstring(ast.parse(open(os.path.join(PACKAGE_ROOT, package,
                                                        "__init__.py")).read()))
    assert doc and "May import" in doc, package
