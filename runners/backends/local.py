"""Local-process backend: each server is `python -m ctbench serve MODEL` on a loopback port.

The server binds port 0 and writes the port it got to a file, so two runs never race for a
port. Each server runs in its own process group, logs to RUN/logs/<name>.log, and its pid is in
RUN/logs/<name>.pid (tests kill -9 it to check that nothing is lost).

Other users of the machine can reach a loopback port too, so the backend the runner makes
(`require_token=True`, runners/run.py) draws a secret, written owner-only to
RUN/secrets/server-token; its servers refuse calls without it (health excepted,
model_servers/sdk/auth.py) and the runner's channels send it (runners/channels.py).
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import ServerStartError
from ctbench.exit_with_parent import PARENT_PID_ENV
from ctbench.model_servers.sdk.auth import TOKEN_FILE_ENV, write_token_file
from ctbench.runners import channels
from ctbench.runners.backends.base import Backend, Endpoint, ServerSpec
from ctbench.runners.process_usage import write_usage


@dataclass
class _Proc:
    spec: ServerSpec
    process: subprocess.Popen
    log_path: Path
    data_root: Path
    log_dir: Path
    address: str = ""


class LocalProcessBackend(Backend):
    name = "local"

    def __init__(self, start_timeout_s: float = 60.0, extra_env: dict | None = None, require_token: bool = False):
        """`require_token`: the servers require a per-backend secret (what the runner asks for);
        without, they are open, for callers that reach them with their own clients."""
        self.start_timeout_s = start_timeout_s
        self.extra_env = dict(extra_env or {})
        self._procs: dict[str, _Proc] = {}
        self._token = secrets.token_urlsafe(32) if require_token else None

    def start(self, spec: ServerSpec, data_root: Path, log_dir: Path, volumes: list[str] | None = None) -> Endpoint:
        log_dir.mkdir(parents=True, exist_ok=True)
        port_file = log_dir / f"{spec.name}.port"
        port_file.unlink(missing_ok=True)
        log_path = log_dir / f"{spec.name}.log"
        command = [
            sys.executable, "-m", "ctbench", "serve", spec.model,
            "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
            "--data-root", str(data_root), "--exit-with-parent", *spec.args,
        ]
        env = {**os.environ, **{k: str(v) for k, v in spec.environment.items()}, **self.extra_env, PARENT_PID_ENV: str(os.getpid())}
        env.pop(TOKEN_FILE_ENV, None)
        if self._token is not None:
            env[TOKEN_FILE_ENV] = str(write_token_file(log_dir.parent / "secrets", self._token))
        with log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        (log_dir / f"{spec.name}.pid").write_text(str(process.pid))
        self._procs[spec.name] = _Proc(spec, process, log_path, data_root, log_dir)
        deadline = time.monotonic() + self.start_timeout_s
        while not port_file.is_file():
            if process.poll() is not None:
                raise ServerStartError(
                    f"server {spec.name!r} exited at start with code {process.returncode}:\n{self.logs(spec.name)}"
                )
            if time.monotonic() > deadline:
                self.stop(spec.name)
                raise ServerStartError(
                    f"server {spec.name!r} did not start listening within {self.start_timeout_s:.0f}s:\n{self.logs(spec.name)}"
                )
            time.sleep(0.05)
        port = int(port_file.read_text())
        address = self._procs[spec.name].address = f"127.0.0.1:{port}"
        if self._token is not None:
            channels.register_token(address, self._token)
        return Endpoint(spec.name, address, data_root=str(data_root))

    def runnable(self, spec: ServerSpec) -> bool | str:
        if spec.gpu:
            return "needs a GPU container (--backend docker on a GPU host)"
        if not spec.local:
            return "has no local-process form; it runs in its container (--backend docker)"
        return True

    def is_alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.process.poll() is None

    def exit_code(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return None if proc is None else proc.process.poll()

    def restart(self, name: str) -> Endpoint:
        proc = self._procs[name]
        self.stop(name)
        return self.start(proc.spec, proc.data_root, proc.log_dir)

    def logs(self, name: str, tail: int = 40) -> str:
        proc = self._procs.get(name)
        if proc is None or not proc.log_path.is_file():
            return ""
        lines = proc.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        channels.forget_token(proc.address)
        if proc.process.poll() is not None:
            return
        write_usage(proc.process.pid, proc.log_dir / f"{name}.usage.json")
        try:
            os.killpg(proc.process.pid, signal.SIGTERM)
            proc.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait(timeout=5)
        except ProcessLookupError:
            pass

    def running(self) -> list[str]:
        return list(self._procs)
