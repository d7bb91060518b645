"""Package layout only; metadata lives in pyproject.toml.

The design keeps each concern in a top-level folder (runners/, model_servers/, ...). All of them
install under the one `ctbench` namespace (the mapping is `PACKAGE_ROOTS` in ctbench/project.py),
so nothing generic ("evaluation", "datasets") lands at the top of anyone's sys.path. A wheel also
carries the project files `bench` needs at run time (the server registry, Dockerfiles, .proto,
the model-team guide and template server) as package data under ctbench/_project/.

The modules of the light distribution ctbench-sdk (SDK_PACKAGES, SDK_MODULES in
ctbench/project.py) are left out: ctbench depends on ctbench-sdk for them, so each file is
installed by one distribution only (a shared package such as `ctbench` gets its files from both).
"""
import runpy
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
layout = runpy.run_path(str(HERE / "ctbench" / "project.py"))
ROOTS = layout["PACKAGE_ROOTS"]
SDK_ONLY = {package for package in layout["SDK_PACKAGES"] if package not in layout["SDK_MODULES"]}
SDK_MODULES = layout["SDK_MODULES"]


class BuildWithProjectFiles(build_py):
    """build_py without the SDK's modules, plus a copy of the project files inside the built
    `ctbench` package."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if m[1] not in SDK_MODULES.get(package, ())]

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
packages = [p for p in packages if p not in SDK_ONLY and not any(p.startswith(f"{s}.") for s in SDK_ONLY)]

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={"": ["*.pyi", "*.txt", "*.json", "*.yaml", "*.md", "*.proto", "py.typed"]},
    # Package data is the patterns above, never whatever a stale egg-info's SOURCES.txt lists (it
    # would bring the other distribution's modules back as data files).
    include_package_data=False,
    cmdclass={"build_py": BuildWithProjectFiles},
)
