"""Every VLM image's `pip install` lines resolve as its Dockerfile writes them, for the image's
Python, and bring every package the server's load imports. pip's resolver runs as a dry run
against PyPI (wheel metadata only: no CUDA build is downloaded), bounded by a timeout."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctbench.model_servers.vlm_common.pip_resolve import (
    PipInstall,
    check_dockerfile,
    image_python,
    pip_installs,
    resolve_arguments,
)

ROOT = Path(__file__).resolve().parents[2]

# What each server's load imports beyond torch/transformers (the authors' code and its deps).
LOAD_TIME_PACKAGES = {
    "med3dvlm": ("torch", "transformers", "timm", "torchvision", "monai", "peft"),
    "m3d-lamed": ("torch", "transformers", "sentencepiece", "monai"),
    "radfm": ("torch", "transformers", "torchvision", "pillow", "einops-exts", "sentencepiece"),
    "ct-chat": ("torch", "transformers", "torchvision", "einops-exts", "beartype", "ema-pytorch",
                "opencv-python-headless", "vector-quantize-pytorch", "nibabel", "peft"),
    "medgemma": ("torch", "transformers", "pillow"),
    "merlin": ("torch", "torchvision", "merlin-vlm", "peft", "monai"),
    "lingshu": ("torch", "transformers", "pillow", "qwen-vl-utils"),
    "vila-m3": ("torch", "transformers", "timm", "datasets", "monai", "pytorch-ignite", "nibabel", "scikit-image",
                "sentencepiece", "accelerate", "pyarrow", "pandas", "pillow"),
}


def test_pip_lines_are_read_as_written_and_mapped_to_the_repository():
    dockerfile = ROOT / "dockerfiles" / "ct-chat.Dockerfile"
    assert [str(i) for i in pip_installs(dockerfile)] == [
        "pip install -r /tmp/model-requirements.txt",
        "pip install --no-deps /opt/authors/CT-CLIP/transformer_maskgit",
        "pip install -c /tmp/model-requirements.txt /src/sdk /src",
    ]
    args, left_out = resolve_arguments(dockerfile, ROOT)
    requirements = str(ROOT / "model_servers" / "ct_chat" / "requirements.txt")
    assert args == ["-r", requirements, "-c", requirements, str(ROOT / "sdk"), str(ROOT)]
    assert len(left_out) == 1 and "--no-deps" in left_out[0]
    assert PipInstall(("--no-deps", "x")).no_deps


def test_a_resolving_install_from_a_path_outside_the_repository_is_refused(tmp_path):
    dockerfile = tmp_path / "x.Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY r.txt /tmp/r.txt\nRUN pip install -c /tmp/r.txt /opt/authors/thing\n")
    with pytest.raises(ValueError, match="/opt/authors/thing, which is not in the repository"):
        resolve_arguments(dockerfile, tmp_path)


def test_image_python_follows_the_venv_the_dockerfile_makes():
    assert image_python(ROOT / "dockerfiles" / "radfm.Dockerfile") == "3.10"
    assert image_python(ROOT / "dockerfiles" / "medgemma.Dockerfile") == "3.11"
    assert image_python(ROOT / "dockerfiles" / "med3dvlm.Dockerfile") == "3.12"  # Ubuntu 24.04, as the authors need


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LOAD_TIME_PACKAGES))
def test_dockerfile_pip_lines_resolve_with_every_load_time_package(name):
    result = check_dockerfile(ROOT / "dockerfiles" / f"{name}.Dockerfile", ROOT, timeout_s=420)
    assert result.ok, f"{' '.join(result.command)}\n{result.error}"
    missing = [p for p in LOAD_TIME_PACKAGES[name] if p not in result.packages]
    assert not missing, f"{name}: the image lacks {missing}"
    assert result.packages["ctbench"] and result.packages["ctbench-sdk"]
