"""A server's job under Charliecloud: `bench serve` inside `ch-run` on an image directory.

Charliecloud has no daemon: `ch-run` sets up user namespaces and then becomes the server's
process, so the server stays inside the job's process tree (and cgroup) and `scancel` ends it.
It runs as the user who submitted the job, never as root, and shares the node's network, so the
server binds to the node's address as a venv server does.

The image directory comes from a Docker image (`ch-convert -i docker ctbench/chance:latest DIR`)
or a tarball (`ch-convert ctbench-chance.tar.gz DIR`); docs/slurm.md has the steps. The image is
mounted read-only. Host folders are bound at fixed places that every image converted by
`ch-convert` has: the data root at /mnt/0, the run folder at /mnt/1 (the server writes its port
file there and reads the run's token), the weights folder, if any, at /weights where the image
has that folder (as under compose), else at /mnt/2. Charliecloud 0.31
binds read-write; the data and weights stay unwritten because the server opens them for reading
and, on a shared filesystem, because the user's permissions say so.

GPUs: SLURM sets CUDA_VISIBLE_DEVICES for the job and `ch-run` passes the environment through;
the host's driver libraries go into the image once with `ch-fromhost --nvidia DIR` (what
Apptainer's `--nv` does at each start).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ctbench.errors import ServerStartError

KEYS = ("image", "weights", "image_path")  # x-ctbench.slurm / --slurm keys this module takes
DATA_MOUNT = "/mnt/0"
RUN_MOUNT = "/mnt/1"
WEIGHTS_MOUNT = "/mnt/2"
# PATH inside the ctbench images (dockerfiles/base.Dockerfile); ch-run passes the host's PATH,
# which names the host's venv, so the job sets the image's own.
IMAGE_PATH = "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ChImage:
    """Where a server's Charliecloud image is, and what to bind into it."""

    image: Path
    weights: Path | None = None
    image_path: str = IMAGE_PATH

    @classmethod
    def from_options(cls, values: dict, where: str) -> ChImage | None:
        """The image the `image`/`weights` keys name (None without `image`); checks that the
        directory looks like an unpacked image so a wrong path fails before anything is queued."""
        if not values.get("image"):
            if values.get("weights"):
                raise ServerStartError(f"{where}: slurm option 'weights' needs 'image' (a Charliecloud image directory)")
            return None
        image = Path(str(values["image"])).expanduser().resolve()
        if not (image / "bin").exists() or not (image / "mnt").is_dir():
            raise ServerStartError(f"{where}: slurm option image={values['image']!r} is not an unpacked Charliecloud image "
                                   f"(expected {image}/bin and {image}/mnt; make one with `ch-convert -i docker IMAGE {image}`)")
        for mount in (DATA_MOUNT, RUN_MOUNT, WEIGHTS_MOUNT):
            if not (image / mount.lstrip("/")).is_dir():
                raise ServerStartError(f"{where}: image {image} has no {mount} to bind into (ch-convert makes /mnt/0-9)")
        weights = Path(str(values["weights"])).expanduser().resolve() if values.get("weights") else None
        if weights is not None and not weights.is_dir():
            raise ServerStartError(f"{where}: slurm option weights={values['weights']!r} is not a directory")
        return cls(image, weights, str(values.get("image_path") or IMAGE_PATH))

    def inside(self, path: Path, data_root: Path, run_dir: Path) -> str:
        """`path` (under the data root or the run folder) as the server inside the image sees it."""
        for host, mount in ((run_dir, RUN_MOUNT), (data_root, DATA_MOUNT)):
            try:
                return str(Path(mount) / path.relative_to(host))
            except ValueError:
                continue
        raise ServerStartError(f"{path} is neither under the run folder {run_dir} nor the data root {data_root}")

    def command(self, serve_args: list[str], data_root: Path, run_dir: Path, token_file: Path) -> str:
        """The shell line (without the trailing &) that runs `bench serve SERVE_ARGS` in the image;
        SERVE_ARGS already name paths as seen inside, and "$host" is left for the job's shell."""
        q = shlex.quote
        binds = [f"--bind={data_root}:{DATA_MOUNT}", f"--bind={run_dir}:{RUN_MOUNT}"]
        if self.weights is not None:
            binds.append(f"--bind={self.weights}:{self.weights_mount}")
        environment = [f"--set-env=PATH={self.image_path}", "--unset-env=VIRTUAL_ENV", "--unset-env=PYTHONPATH",
                       f"--set-env=CTBENCH_SERVER_TOKEN_FILE={self.inside(token_file, data_root, run_dir)}"]
        head = ["ch-run", *binds, *environment, str(self.image), "--", "bench", "serve"]
        return " ".join(q(part) for part in head) + ' --host "$host" ' + " ".join(q(part) for part in serve_args)

    @property
    def weights_mount(self) -> str:
        """/weights where the image has it (the ctbench images' place, as in compose), else /mnt/2."""
        return "/weights" if (self.image / "weights").is_dir() else WEIGHTS_MOUNT

    def describe(self) -> str:
        return f"Charliecloud image {self.image}" + (f", weights {self.weights}" if self.weights else "")
