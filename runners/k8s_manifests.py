"""Kubernetes manifests for a benchmark run (`bench deploy k8s`): written, validated offline
against the API schemas, never applied here (no cluster is reachable from where this was made).

Per model: a Deployment (its image from the registry, non-root, read-only root filesystem, no
privilege escalation, GPU limits for `gpu: true` servers, the data and weights volumes mounted
read-only), a Service on its gRPC port, and a NetworkPolicy that admits only the runner's pods and
allows no egress. One Secret holds the run's token (servers read it through
$CTBENCH_SERVER_TOKEN_FILE, model_servers/sdk/auth.py), and one Job runs `bench run --endpoints`
against the Services with that token.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from ctbench.runners.backends.base import ServerSpec

LABEL = "ctbench.org/server"
RUNNER_LABEL = {"ctbench.org/role": "runner"}
TOKEN_MOUNT = "/run/ctbench-secrets"
UID = 10001  # the ctbench images' user (dockerfiles/base.Dockerfile)


@dataclass(frozen=True)
class K8sOptions:
    namespace: str = "ctbench"
    data_claim: str = "ctbench-data"  # PersistentVolumeClaim holding the CT volumes (read-only)
    weights_claim: str = "ctbench-weights"  # one claim, a folder per model at /weights/<name> (read-only)
    runs_claim: str = "ctbench-runs"  # where the runner Job writes the run folder
    runner_image: str = "ctbench/base:latest"
    dataset: str = "/data/dataset.jsonl"


def _security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def _claim(name: str, claim: str, read_only: bool) -> dict:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


def server_manifests(spec: ServerSpec, options: K8sOptions) -> list[dict]:
    name = f"ctbench-{spec.name}"
    labels = {LABEL: spec.name}
    port = spec.container_port
    args = [spec.model, "--host", "0.0.0.0", "--port", str(port), "--data-root", "/data", *spec.args]
    resources: dict = {"limits": {"nvidia.com/gpu": 1}} if spec.gpu else {}
    container = {
        "name": "server", "image": spec.image or f"ctbench/{spec.name}:latest", "command": ["bench", "serve"], "args": args,
        "ports": [{"name": "grpc", "containerPort": port}],
        "env": [{"name": "CTBENCH_SERVER_TOKEN_FILE", "value": f"{TOKEN_MOUNT}/server-token"},
                *({"name": k, "value": str(v)} for k, v in spec.environment.items())],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True},
                         {"name": "weights", "mountPath": "/weights", "subPath": spec.name, "readOnly": True},
                         {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 10},
        "securityContext": _security(), "resources": resources,
    }
    meta = {"name": name, "namespace": options.namespace, "labels": labels}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "automountServiceAccountToken": False, "enableServiceLinks": False,
                "securityContext": {"runAsNonRoot": True, "fsGroup": UID},
                "containers": [container],
                "volumes": [_claim("data", options.data_claim, True), _claim("weights", options.weights_claim, True),
                            {"name": "token", "secret": {"secretName": "ctbench-server-token", "defaultMode": 0o400}},
                            {"name": "tmp", "emptyDir": {"medium": "Memory"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "selector": labels, "ports": [{"name": "grpc", "port": port, "targetPort": "grpc"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": {
            "podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": RUNNER_LABEL}}], "ports": [{"port": port}]}],
            "egress": []}},
    ]


def run_manifests(specs: list[ServerSpec], options: K8sOptions, token: str | None = None) -> list[dict]:
    """Everything for one run: the token Secret, each server's objects, the runner Job."""
    token = token or secrets.token_urlsafe(32)
    documents: list[dict] = [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                              "metadata": {"name": "ctbench-server-token", "namespace": options.namespace},
                              "stringData": {"server-token": token}}]
    for spec in specs:
        documents.extend(server_manifests(spec, options))
    endpoints = [f"--endpoints={s.name}=ctbench-{s.name}.{options.namespace}.svc:{s.container_port}" for s in specs]
    runner = {
        "name": "runner", "image": options.runner_image, "command": ["bench", "run"],
        "args": [*endpoints, "--token-file", f"{TOKEN_MOUNT}/server-token", "--dataset", options.dataset,
                 "--data-root", "/data", "--out", "/runs/k8s"],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True},
                         {"name": "runs", "mountPath": "/runs"},
                         {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": _security(),
    }
    documents.append({"apiVersion": "batch/v1", "kind": "Job",
                      "metadata": {"name": "ctbench-runner", "namespace": options.namespace, "labels": RUNNER_LABEL},
                      "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": RUNNER_LABEL}, "spec": {
                          "restartPolicy": "OnFailure", "automountServiceAccountToken": False,
                          "securityContext": {"runAsNonRoot": True, "fsGroup": UID},
                          "containers": [runner],
                          "volumes": [_claim("data", options.data_claim, True), _claim("runs", options.runs_claim, False),
                                      {"name": "token", "secret": {"secretName": "ctbench-server-token", "defaultMode": 0o400}},
                                      {"name": "tmp", "emptyDir": {}}]}}}})
    return documents
