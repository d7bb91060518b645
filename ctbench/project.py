"""The project folder: the files besides Python code that `bench` needs at run time.

The server registry (`compose/compose.yaml`), the Dockerfiles and the build context the registry's
`build:` sections point at, the `.proto`, the model-team guide and its template server. In a
checkout they are the repository's own folders. A wheel carries a copy of them as package data
(`ctbench/_project/`, written by setup.py at build time); `project_root()` then writes one
complete project folder (those files plus the Python sources in the repository's layout, which
the images' `pip install /src` needs) under the user's cache, once per version, and every caller
uses it exactly as it would use a checkout. `bench init DIR` writes the same folder where the
user wants to edit it.

This module is also read by setup.py (it imports nothing outside the standard library), so the
layout is written once.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

# Python package -> the repository folder that holds it. Every top-level Python folder installs
# under the one `ctbench` namespace, so nothing generic lands at the top of anyone's sys.path.
PACKAGE_ROOTS = {
    "ctbench": "ctbench",
    "ctbench.runners": "runners",
    "ctbench.model_servers": "model_servers",
    "ctbench.preprocess": "preprocess",
    "ctbench.evaluation": "evaluation",
    "ctbench.datasets": "datasets",
}

# Bare folder names that are also PyPI packages third-party code imports (see require_import_name).
SHADOWED_NAMES = frozenset({"datasets"})

# The light distribution `ctbench-sdk` (built from sdk/, read by sdk/setup.py): what a model server
# imports, and the `bench` script with `bench serve` and `bench conformance` (server_cli.py), with
# nothing of the runner or the scorer. Package -> folder, as above; a package listed in
# SDK_MODULES contributes only those modules (the rest of `ctbench` is the click CLI, the LLM
# client, ...). ctbench depends on ctbench-sdk and carries none of these files itself (setup.py
# leaves them out), so each module is installed once.
SDK_PACKAGES = {
    "ctbench": "ctbench",
    "ctbench.v1": "ctbench/v1",
    "ctbench.conformance": "ctbench/conformance",
    "ctbench.model_servers": "model_servers",
    "ctbench.model_servers.sdk": "model_servers/sdk",
    "ctbench.preprocess": "preprocess",
}
SDK_MODULES = {
    "ctbench": ("__init__", "__main__", "project", "errors", "exit_with_parent", "registry", "compatibility",
                "server_cli", "status_codes"),
    "ctbench.model_servers": ("__init__", "registry"),
}
SDK_FOLDER = "sdk"  # its pyproject.toml and setup.py

# What a project folder holds besides the Python sources (paths relative to the repository root).
PROJECT_FILES = (
    "compose",
    "dockerfiles",
    "proto",
    "docs",
    "sdk",
    "scripts/docker",
    "scripts/install-wordnet.sh",
    "pyproject.toml",
    "setup.py",
    "README.md",
    "LICENSE",
    ".dockerignore",
)

PACKAGED = "_project"  # the folder inside the installed `ctbench` package that holds the copy
CACHE_ENV = "CTBENCH_HOME"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.crt", "*.egg-info", PACKAGED)
REGISTRY = Path("compose") / "compose.yaml"


def require_import_name(name: str, file: str) -> None:
    """Refuse to import a project folder under any name but its `ctbench.` one.

    From the checkout root, `import runners` would load `runners/` a second time as an unrelated
    module (two registries, two sets of error types). Each folder's `__init__` calls this with its
    `__name__` and `__file__`.

    `datasets` is the exception: it is also the name of a PyPI package that other libraries probe
    for (transformers imports it whenever `find_spec("datasets")` finds one, and from the checkout
    root the probe finds this folder). Refusing there would break those libraries, so that import
    goes through with an ImportWarning (hidden by default) instead."""
    folder = Path(file).resolve().parent.name
    expected = next((package for package, path in PACKAGE_ROOTS.items() if path == folder), None)
    if expected is None or name == expected:
        return
    message = (f"{Path(file).resolve().parent}: this folder is the package {expected!r}; import it as "
               f"`{expected}` (installed by `pip install -e .`), not as {name!r}")
    if name in SHADOWED_NAMES:
        import warnings

        warnings.warn(message, ImportWarning, stacklevel=3)
        return
    raise ImportError(message)


def import_installed(name: str):
    """Import the installed third-party package `name` (one of SHADOWED_NAMES), never this
    project's folder of that name, and return it.

    Run from the checkout root, `python -m ...` puts the root first on sys.path, so there
    `import datasets` loads the project's `datasets/` folder (with an ImportWarning, see
    `require_import_name`) instead of Hugging Face's `datasets`, and code that needs the latter
    (VILA's) fails with "cannot import name ...". This imports `name` with the path entries that
    hold the project's folder left out, after dropping that folder from sys.modules if it was
    imported under the bare name; later imports of `name` get the installed package. Raises
    ModuleNotFoundError when no such package is installed."""
    import importlib
    import importlib.util
    import sys

    spec = importlib.util.find_spec(f"ctbench.{name}")
    if spec is None or not spec.submodule_search_locations:
        return importlib.import_module(name)
    ours = Path(next(iter(spec.submodule_search_locations))).resolve()

    def is_ours(module) -> bool:
        file = getattr(module, "__file__", None)
        return file is not None and Path(file).resolve().is_relative_to(ours)

    loaded = sys.modules.get(name)
    if loaded is not None and not is_ours(loaded):
        return loaded
    for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
        if is_ours(sys.modules[key]):
            del sys.modules[key]
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if (Path(entry or os.getcwd()) / name).resolve() != ours]
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = saved


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The repository this package is imported from (an editable install or the source tree), or
    None for an installed wheel."""
    root = package_dir().parent
    if (root / "setup.py").is_file() and (root / REGISTRY).is_file() and (root / "runners").is_dir():
        return root
    return None


def project_root() -> Path:
    """A complete project folder: the checkout when there is one, else the copy this version of
    the wheel wrote under $CTBENCH_HOME (default ~/.cache/ctbench)."""
    root = checkout_root()
    if root is not None:
        return root
    packaged = package_dir() / PACKAGED
    if not (packaged / REGISTRY).is_file():
        raise FileNotFoundError(
            f"{packaged}: this ctbench installation carries no project files (neither a checkout nor a "
            "complete wheel); reinstall ctbench or pass --registry"
        )
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ctbench")
    dest = cache / f"project-{_fingerprint(packaged)}"
    marker = dest / ".complete"
    if not marker.is_file():
        import fcntl

        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / f".{dest.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once write it once
            if not marker.is_file():
                write_project(dest, overwrite=True)
                marker.write_text("")
    return dest


def write_project(dest: str | Path, *, overwrite: bool = False) -> Path:
    """Write a project folder to `dest`: the project files and the Python sources in the
    repository's layout. Refuses to write over existing files unless `overwrite`."""
    dest = Path(dest)
    source = checkout_root() or package_dir() / PACKAGED
    clashes = [p for p in (*PROJECT_FILES, *PACKAGE_ROOTS.values()) if (dest / p).exists()]
    if clashes and not overwrite:
        raise FileExistsError(f"{dest}: already holds {', '.join(clashes[:5])} (pass overwrite to replace)")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for relative in PROJECT_FILES:
        _copy(source / relative, tmp / relative)
    in_checkout = checkout_root() is not None
    nested = {package.split(".", 1)[1] for package in PACKAGE_ROOTS if package != "ctbench"}
    for package, folder in PACKAGE_ROOTS.items():
        if in_checkout:
            origin = source / folder
        else:  # a wheel installs every root inside the `ctbench` package
            origin = package_dir() if package == "ctbench" else package_dir() / package.split(".", 1)[1]
        ignore = _skip_nested(nested) if package == "ctbench" else _SKIP
        shutil.copytree(origin, tmp / folder, ignore=ignore, dirs_exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for entry in tmp.iterdir():
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        entry.rename(target)
    tmp.rmdir()
    return dest


def _skip_nested(nested: set[str]):
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(_SKIP(folder, names))
        if Path(folder) == package_dir():
            skipped |= {n for n in names if n in nested}
        return skipped
    return ignore


def _copy(src: Path, dst: Path) -> None:
    if not src.exists():
        raise FileNotFoundError(f"{src}: a project file is missing from this installation")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, ignore=_SKIP)
    else:
        shutil.copy2(src, dst)


def _fingerprint(packaged: Path) -> str:
    """Version-and-content key of the packaged copy, so two wheels never share a cache folder."""
    from ctbench import __version__

    digest = hashlib.sha256(__version__.encode())
    for path in sorted(packaged.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(packaged)).encode())
            digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:12]}"
