"""Package layout only; metadata lives in pyproject.toml.

The design keeps each concern in a top-level folder (runners/, model_servers/, ...). All of them
install under the one `ctbench` namespace (the mapping is `PACKAGE_ROOTS` in ctbench/project.py),
so nothing generic ("evaluation", "datasets") lands at the top of anyone's sys.path. A wheel also
carries the project files `bench` needs at run time (the server registry, Dockerfiles, .proto,
the model-team guide and template server) as package data under ctbench/_project/.
"""
import runpy
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
layout = runpy.run_path(str(HERE / "ctbench" / "project.py"))
ROOTS = layout["PACKAGE_ROOTS"]


class BuildWithProjectFiles(build_py):
    """build_py, plus a copy of the project files inside the built `ctbench` package."""

    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the checkout itself
        dest = Path(self.build_lib) / "ctbench" / layout["PACKAGED"]
        shutil.rmtree(dest, ignore_errors=True)
        for relative in layout["PROJECT_FILES"]:
            src, dst = HERE / relative, dest / relative
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.crt"))
            else:
                shutil.copy2(src, dst)


packages = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={"": ["*.pyi", "*.txt", "*.json", "*.yaml", "*.md", "*.proto", "py.typed"]},
    cmdclass={"build_py": BuildWithProjectFiles},
)
