"""scripts/docker/engine.sh runs its own engine beside any other one and stops only the daemon
it started. Driven against stand-ins for dockerd, docker and ip (tests/containers/fixtures/
fake_engine), so no engine is needed; ci-stage.sh starts the real one with the same script."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "scripts" / "docker" / "engine.sh"
FAKES = Path(__file__).parent / "fixtures" / "fake_engine"


@pytest.fixture
def engine_env(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER", "CTBENCH_DOCKER"))}
    env.update(
        PATH=f"{FAKES}:{env['PATH']}",
        FAKE_ENGINE_STATE=str(state),
        DOCKERD_PIDFILE=str(tmp_path / "dockerd.pid"),
        DOCKERD_DATA_ROOT=str(tmp_path / "data-root"),
        DOCKERD_EXEC_ROOT=str(tmp_path / "exec-root"),
        DOCKERD_LOG=str(tmp_path / "dockerd.log"),
    )
    yield env, state
    subprocess.run([str(ENGINE), "stop"], env=env, capture_output=True, timeout=60)


def engine(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENGINE), command], env=env, capture_output=True, text=True, timeout=90)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").is_dir() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_defaults_keep_apart_from_the_system_engine():
    shown = subprocess.run(
        ["bash", "-c", f"unset DOCKER_HOST; source {REPO}/scripts/docker/common.sh; "
         'echo "$DOCKER_HOST $DOCKERD_DATA_ROOT $DOCKERD_EXEC_ROOT $DOCKERD_PIDFILE $DOCKERD_BRIDGE"'],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    ).stdout.split()
    host, data_root, exec_root, pidfile, bridge = shown
    assert host == "unix:///var/run/ctbench-docker.sock"
    assert data_root != "/var/lib/docker" and exec_root not in ("/var/run/docker", "/run/docker")
    assert pidfile not in ("/var/run/docker.pid", "/run/docker.pid") and bridge != "docker0"


def test_start_gives_dockerd_its_own_socket_roots_pidfile_and_bridge_and_stop_stops_it(engine_env):
    env, state = engine_env
    started = engine("start", env)
    assert started.returncode == 0, started.stderr
    args = (state / "dockerd.args").read_text().split()
    assert args[args.index("-H") + 1] == "unix:///var/run/ctbench-docker.sock"
    for option in (f"--data-root={env['DOCKERD_DATA_ROOT']}", f"--exec-root={env['DOCKERD_EXEC_ROOT']}",
                   f"--pidfile={env['DOCKERD_PIDFILE']}", "--bridge=ctbench0"):
        assert option in args
    assert (state / "bridge-ctbench0").exists(), "the bridge dockerd --bridge needs is created first"
    pid = int(Path(env["DOCKERD_PIDFILE"]).read_text())
    assert alive(pid)

    stopped = engine("stop", env)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopping dockerd (pid {pid})" in stopped.stderr
    assert not alive(pid) and not (state / "bridge-ctbench0").exists()


def test_stop_leaves_alone_a_process_whose_pid_is_in_a_stale_pid_file(engine_env):
    env, _ = engine_env
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        Path(env["DOCKERD_PIDFILE"]).write_text(str(stranger.pid))
        result = engine("stop", env)
        assert result.returncode == 0, result.stderr
        assert "not this script's dockerd; nothing stopped" in result.stderr
        assert stranger.poll() is None, "a process the script did not start keeps running"
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_leaves_alone_another_engines_dockerd(engine_env, tmp_path):
    """Another daemon (its own pid file) whose pid ends up in ours is not ours to stop."""
    env, _state = engine_env
    other_pidfile = tmp_path / "other.pid"
    other = subprocess.Popen([str(FAKES / "dockerd"), f"--pidfile={other_pidfile}"], env=env)
    try:
        Path(env["DOCKERD_PIDFILE"]).write_text(str(other.pid))
        result = engine("stop", env)
        assert result.returncode == 0, result.stderr
        assert other.poll() is None and "nothing stopped" in result.stderr
    finally:
        other.terminate()
        other.wait(10)
