"""A project folder imported under the wrong name fails at once, saying which name to use."""
from __future__ import annotations

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
