"""A server under Charliecloud in a SLURM job (runners/backends/charliecloud.py), for real: the
job is submitted by an unprivileged user, `bench serve` runs inside `ch-run` on an image made
from dockerfiles/chance.Dockerfile (scripts/slurm/ch-image.sh), answers the phantom benchmark
with the run's token, and is gone, process and all, after `scancel`."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from runner_helpers import bench, pid_alive, wait_for
from slurm_helpers import job_state, wait_until_ended

from ctbench.errors import ServerStartError
from ctbench.runners.backends.charliecloud import ChImage
from ctbench.runners.backends.slurm import SlurmBackend
from ctbench.runners.compose_file import load_compose_file

IMAGE = Path(os.environ.get("CTBENCH_CH_IMAGE", "/var/cache/ctbench/charliecloud/chance"))
USER = "nobody"  # any account other than root; it submits the job, so the job runs as it

@pytest.fixture
def image() -> Path:
    if shutil.which("ch-run") is None:
        pytest.skip("ch-run missing: apt-get install charliecloud (scripts/slurm/cluster.sh start installs it)")
    if not (IMAGE / "bin").exists():
        pytest.skip(f"no Charliecloud image at {IMAGE}: make it with scripts/slurm/ch-image.sh ctbench/chance:latest {IMAGE}")
    return IMAGE


@pytest.fixture
def user_run_dir():
    """A run folder the unprivileged user owns (pytest's tmp_path is root's alone)."""
    account = pwd.getpwnam(USER)
    path = Path(tempfile.mkdtemp(prefix="ctbench-ch-"))
    (path / "data").mkdir()
    for each in (path, path / "data"):
        os.chown(each, account.pw_uid, account.pw_gid)
    yield path, account.pw_uid
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slurm
@pytest.mark.slow
def test_a_server_in_a_charliecloud_image_runs_as_its_user_answers_and_ends_on_scancel(image, user_run_dir, slurm_cluster):
    """The job script is the backend's own; USER submits it (the venv the runner uses here sits
    where only root can read, so the submitting is what the test does as USER)."""
    run, uid = user_run_dir
    backend = SlurmBackend({"image": str(image)})
    spec = load_compose_file()["chance"]
    for folder in ("logs", "endpoints"):
        (run / folder).mkdir()
        os.chown(run / folder, uid, -1)
    token = backend._write_token(run / "secrets")
    for each in (run / "secrets", token):
        os.chown(each, uid, -1)
    backend._start_heartbeat(run / "endpoints")
    host_file, port_file = run / "endpoints" / "chance-t.host", run / "endpoints" / "chance-t.port"
    script = backend._script(spec, "chance", backend.resources(spec), run / "data", run / "logs" / "chance.log",
                             host_file, port_file, token, backend._heartbeat)
    submitted = subprocess.run(["runuser", "-u", USER, "--", "env", f"USER={USER}", "sbatch", "--parsable"], input=script,
                               capture_output=True, text=True, timeout=30)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        log = run / "logs" / "chance.log"
        wait_for(lambda: port_file.is_file() or job_state(job_id) == "GONE", 120, "the server in the image to listen")
        assert port_file.is_file(), log.read_text() if log.is_file() else "no job log"
        assert f"Charliecloud image {image}" in log.read_text()
        pid = int(host_file.with_suffix(".pid").read_text())
        status = Path(f"/proc/{pid}/status").read_text()
        real_uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        assert real_uid == uid != 0, status
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert any(entry.startswith(b"CH_RUNNING=") for entry in environ), "the server runs inside ch-run"
        assert b"CTBENCH_SERVER_TOKEN_FILE=/mnt/1/secrets/server-token" in environ
        address = f"{host_file.read_text().strip()}:{port_file.read_text().strip()}"

        refused = bench("run", "--endpoints", f"chance={address}", "--out", str(run / "no-token"),
                        "--phantom-volumes", "1", "--no-score")
        output, _ = refused.communicate(timeout=120)
        assert refused.returncode == 2 and "UNAUTHENTICATED" in output, output
        answered = bench("run", "--endpoints", f"chance={address}", "--token-file", str(token),
                         "--out", str(run / "phantom"), "--phantom-volumes", "1", "--no-score")
        output, _ = answered.communicate(timeout=120)
        assert answered.returncode == 0 and "chance: 10 answered, 0 errors" in output, output

        subprocess.run(["scancel", job_id], check=True, timeout=30)
        wait_until_ended(job_id, 60)
        wait_for(lambda: not pid_alive(pid), 30, "the server inside the image to end")
    finally:
        backend._beating.set()  # the heartbeat thread stops before the fixture removes the folder
        if job_state(job_id) != "GONE":
            subprocess.run(["scancel", job_id], timeout=30)


def test_an_image_option_that_names_no_image_fails_before_anything_is_queued(tmp_path):
    with pytest.raises(ServerStartError, match=r"--slurm: slurm option image='.*nowhere' is not an unpacked Charliecloud image"):
        SlurmBackend({"image": str(tmp_path / "nowhere")})
    with pytest.raises(ServerStartError, match="slurm option 'weights' needs 'image'"):
        SlurmBackend({"weights": str(tmp_path)})


def test_the_job_runs_bench_serve_in_ch_run_with_the_data_and_run_folder_bound(tmp_path):
    image = tmp_path / "image"
    for folder in ("bin", "mnt/0", "mnt/1", "mnt/2", "weights"):
        (image / folder).mkdir(parents=True)
    weights = tmp_path / "weights"
    weights.mkdir()
    backend = SlurmBackend({"image": str(image), "weights": str(weights), "cpus": "2"})
    spec = load_compose_file()["chance"]
    run = tmp_path / "run"
    script = backend._script(spec, "chance", backend.resources(spec), tmp_path / "data", run / "logs" / "chance.log",
                             run / "endpoints" / "chance-x.host", run / "endpoints" / "chance-x.port",
                             run / "secrets" / "server-token", run / "endpoints" / "runner.alive")
    assert "#SBATCH --cpus-per-task=2" in script
    launch = next(line for line in script.splitlines() if line.startswith("ch-run "))
    assert f"--bind={tmp_path / 'data'}:/mnt/0" in launch and f"--bind={run}:/mnt/1" in launch
    assert f"--bind={weights}:/weights" in launch  # the image has /weights, as the ctbench images do
    assert "--set-env=CTBENCH_SERVER_TOKEN_FILE=/mnt/1/secrets/server-token" in launch
    assert f"{image} -- bench serve --host \"$host\" chance --port 0 --port-file /mnt/1/endpoints/chance-x.port --data-root /mnt/0" in launch
    assert ChImage.from_options({}, "x") is None


@pytest.mark.slurm
@pytest.mark.slow
def test_bench_run_through_the_image_reads_volumes_by_reference_at_the_images_data_mount(image, tmp_path, slurm_cluster):
    """The whole runner path: the job binds the data root at /mnt/0, the runner sends paths as
    the server sees them; $USER unset in the runner's environment (the job sets it for ch-run)."""
    env = {key: value for key, value in os.environ.items() if key != "USER"}
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ctbench", "run", "--backend", "slurm", "--servers", "geometric",
                           "--slurm", f"image={image}", "--phantom-volumes", "2", "--out", str(out), "--no-score"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout
    assert "geometric: 20 answered, 0 errors" in proc.stdout and "(volume files read: 2)" in proc.stdout, proc.stdout
    assert f"Charliecloud image {image}" in (out / "logs" / "geometric.log").read_text()
    job_id = (out / "logs" / "geometric.jobid").read_text()
    assert job_state(job_id) == "GONE" or wait_until_ended(job_id, 30)
