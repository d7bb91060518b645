"""Command-line tools the tests call, found the way the scripts find them: the running
interpreter's own environment first (the .venv scripts/setup.sh makes), then PATH."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_tool(name: str) -> str | None:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)
