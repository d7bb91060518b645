"""`bench deploy k8s` (runners/k8s_manifests.py): the manifests it writes pass the Kubernetes API
schemas offline (kubernetes-validate, strict) and say what the design promises. No cluster runs
here: this checks the documents, not their behaviour."""
from __future__ import annotations

import stat

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from ctbench.cli import main

K8S_VERSION = "1.30"


@pytest.fixture
def documents(tmp_path):
    out = tmp_path / "k8s.yaml"
    result = CliRunner().invoke(main, ["deploy", "k8s", "--servers", "geometric,chance,medgemma", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "the file holds the run's token"
    return list(yaml.safe_load_all(out.read_text()))


def test_every_document_passes_the_api_schemas_strictly(documents):
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    kinds = [d["kind"] for d in documents]
    assert kinds.count("Deployment") == kinds.count("Service") == kinds.count("NetworkPolicy") == 3
    assert kinds.count("Secret") == 1 and kinds.count("Job") == 1


def test_a_broken_document_fails_the_same_validation(documents):
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "not-a-port"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_servers_run_non_root_with_read_only_data_no_egress_and_gpus_where_asked(documents):
    by = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    for name in ("geometric", "chance", "medgemma"):
        pod = by[("Deployment", f"ctbench-{name}")]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/data"]["readOnly"] and mounts["/weights"]["readOnly"]
        assert {"name": "CTBENCH_SERVER_TOKEN_FILE", "value": "/run/ctbench-secrets/server-token"} in container["env"]
        policy = by[("NetworkPolicy", f"ctbench-{name}")]["spec"]
        assert "Egress" in policy["policyTypes"] and policy["egress"] == []
        gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert gpus == (1 if name == "medgemma" else None)
    runner = by[("Job", "ctbench-runner")]["spec"]["template"]["spec"]["containers"][0]
    assert "--endpoints=chance=ctbench-chance.ctbench.svc:50051" in runner["args"] and "--token-file" in runner["args"]
