"""`bench selftest` in a model's own stack, where this machine has one: the test venv cannot hold
merlin-vlm's, CT-CHAT's or VILA-M3's pins beside its own torch (nor Med3DVLM's Python >= 3.12), so
each runs in the venv an environment variable points at (how to make one: model_servers/VLMS.md),
and is skipped, saying so, otherwise. CT-CHAT, VILA-M3 and Med3DVLM also need the authors'
checkouts at the pinned commits. VILA-M3 runs twice: `authors` (the default) and `published`, whose
every answer goes through the VISTA3D expert."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

STACKS = {
    # model: (env var naming the venv's python, other env vars the selftest needs)
    "merlin": ("CTBENCH_MERLIN_PYTHON", ()),
    "ct-chat": ("CTBENCH_CTCHAT_PYTHON", ("CTBENCH_CTCHAT_REPO", "CTBENCH_CTCLIP_REPO")),
    "vila-m3": ("CTBENCH_VILA_M3_PYTHON", ("CTBENCH_VILA_M3_REPO",)),
    "med3dvlm": ("CTBENCH_MED3DVLM_PYTHON", ("CTBENCH_MED3DVLM_REPO",)),
}
# (model, `bench selftest --option`s)
RUNS = [("ct-chat", ()), ("merlin", ()), ("vila-m3", ()), ("vila-m3", ("variant=published",)), ("med3dvlm", ())]


def _missing(model: str) -> list[str]:
    python_var, others = STACKS[model]
    return [v for v in (python_var, *others) if not os.environ.get(v)]


@pytest.mark.slow
@pytest.mark.parametrize("model, options", RUNS, ids=[" ".join((m, *o)) for m, o in RUNS])
def test_selftest_passes_in_the_models_own_stack(model, options, tmp_path):
    missing = _missing(model)
    if missing:
        pytest.skip(f"{model}: set {', '.join(missing)} (model_servers/VLMS.md says how) to run its selftest")
    report = tmp_path / "selftest.json"
    python = os.environ[STACKS[model][0]]
    assert os.access(python, os.X_OK), (f"{STACKS[model][0]}={python}: no such interpreter (not installed; "
                                        "scripts/stack-venv.sh makes one, model_servers/VLMS.md says how)")
    flags = [a for option in options for a in ("--option", option)]
    done = subprocess.run([python, "-m", "ctbench", "selftest", model, *flags, "--workdir", str(tmp_path / "work"),
                           "--json", str(report)], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    doc = json.loads(report.read_text())
    assert doc["passed"] and [s["name"] for s in doc["stages"]][-1] == "answers"
    assert [bool(a["options"]) for a in doc["answers"]] == [False, True, True]
