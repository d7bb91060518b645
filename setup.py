"""Package layout only; metadata lives in pyproject.toml.

The design keeps each concern in a top-level folder (runners/, model_servers/, ...). All of them
install under the one `ctbench` namespace, so nothing generic ("evaluation", "datasets") lands at
the top of anyone's sys.path.
"""
from setuptools import find_packages, setup

ROOTS = {
    "ctbench": "ctbench",
    "ctbench.runners": "runners",
    "ctbench.model_servers": "model_servers",
    "ctbench.preprocess": "preprocess",
    "ctbench.evaluation": "evaluation",
    "ctbench.datasets": "datasets",
}

packages = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={"": ["*.pyi", "*.txt", "*.json", "*.yaml", "*.md", "*.proto", "py.typed"]},
)
