"""Package layout of ctbench-sdk only; metadata lives in sdk/pyproject.toml.

The sources are the repository's own folders one level up (ctbench/, model_servers/sdk/,
preprocess/), installed under the same `ctbench.` names as in the full distribution. Which
packages, and which modules of a shared package such as `ctbench`, is `SDK_PACKAGES` and
`SDK_MODULES` in ctbench/project.py.
"""
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REPO = Path(__file__).resolve().parent.parent
layout = runpy.run_path(str(REPO / "ctbench" / "project.py"))
PACKAGES = layout["SDK_PACKAGES"]
ONLY = layout["SDK_MODULES"]


class BuildSdkModules(build_py):
    """build_py, keeping of a shared package only the modules the SDK carries."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package in ONLY:
            modules = [m for m in modules if m[1] in ONLY[package]]
        return modules


setup(
    packages=list(PACKAGES),
    package_dir={package: str(Path("..") / folder) for package, folder in PACKAGES.items()},
    package_data={"": ["*.pyi", "py.typed"]},
    # Package data is the patterns above, never whatever a stale egg-info's SOURCES.txt lists (it
    # would bring the other distribution's modules back as data files).
    include_package_data=False,
    cmdclass={"build_py": BuildSdkModules},
)
