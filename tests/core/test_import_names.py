"""A project folder imported under the wrong name fails at once, saying which name to use."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ctbench.project import PACKAGE_ROOTS, SHADOWED_NAMES

FOLDERS = sorted(folder for package, folder in PACKAGE_ROOTS.items() if package != "ctbench")
REFUSED = [folder for folder in FOLDERS if folder not in SHADOWED_NAMES]


@pytest.mark.parametrize("folder", REFUSED)
def test_bare_folder_name_is_refused_with_the_right_name(folder, repo_root):
    # From the checkout root the folder is importable by its bare name (the cwd is on sys.path).
    result = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=repo_root,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert f"import it as `ctbench.{folder}`" in result.stderr


def test_the_ctbench_names_import_from_the_checkout_root(repo_root):
    modules = ", ".join(f"ctbench.{folder}" for folder in FOLDERS)
    result = subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=repo_root,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_a_folder_named_like_a_pypi_package_stays_importable_for_libraries_that_probe_for_it(repo_root):
    # transformers imports `datasets` whenever find_spec finds one; from the checkout root that is
    # the datasets/ folder, and refusing it would break `import sentence_transformers` there.
    code = ("import warnings; warnings.simplefilter('always');\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    import datasets\n"
            "print([str(w.message) for w in seen if w.category is ImportWarning])")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "import it as `ctbench.datasets`" in result.stdout


INSTALLED_CHECK = """
import sys
sys.path.insert(0, '')  # what `python -m ctbench ...` from the checkout root does
import datasets
first = datasets.__file__
from ctbench.project import import_installed
module = import_installed("datasets")
import datasets as again
from datasets import load_dataset  # what VILA imports
print(first, module.__file__, again is module, load_dataset(), sep="\\n")
"""


def test_the_installed_package_is_imported_in_place_of_the_shadowing_folder(repo_root, tmp_path):
    site = tmp_path / "site"
    (site / "datasets").mkdir(parents=True)
    (site / "datasets" / "__init__.py").write_text("def load_dataset():\n    return 'installed'\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", INSTALLED_CHECK], cwd=repo_root, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    first, chosen, same, called = result.stdout.strip().splitlines()[-4:]
    assert first == str(repo_root / "datasets" / "__init__.py")  # the shadowing: the project's folder
    assert chosen == str(site / "datasets" / "__init__.py") and same == "True" and called == "installed"


def test_without_an_installed_package_the_import_fails_by_its_name(repo_root, tmp_path):
    code = ("import sys; sys.path.insert(0, '')\n"
            "import importlib.util, ctbench.project as p\n"
            "try:\n    p.import_installed('datasets')\n"
            "except ModuleNotFoundError as exc:\n    print('missing', exc.name)\n"
            "else:\n    print('found', sys.modules['datasets'].__file__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    # Where Hugging Face's datasets is installed in this venv it is found; the project's folder never is.
    assert line == "missing datasets" or (line.startswith("found ") and str(repo_root / "datasets") not in line)
