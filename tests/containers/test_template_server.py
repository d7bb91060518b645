"""The template server from docs/shipping-a-model-container.md starts with the command line the
registry example gives it (`--option weights=/weights`, as `bench serve` takes)."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from ctbench.runners.health import wait_until_serving

TEMPLATE = Path(__file__).resolve().parents[2] / "dockerfiles" / "template" / "template_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_template_server_accepts_the_registry_command_line(tmp_path):
    port = free_port()
    weights = tmp_path / "weights"
    weights.mkdir()
    proc = subprocess.Popen([sys.executable, str(TEMPLATE), "template", "--host", "127.0.0.1", "--port", str(port),
                             "--data-root", str(tmp_path), "--option", f"weights={weights}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(f"127.0.0.1:{port}", 60, "template", lambda: proc.poll() is None,
                           lambda: proc.stdout.read() if proc.poll() is not None else "")
    finally:
        proc.terminate()
        proc.wait(10)
