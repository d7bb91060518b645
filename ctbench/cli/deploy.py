"""`bench deploy k8s`: Kubernetes manifests for a run (runners/k8s_manifests.py)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from ctbench.cli.options import library_errors


@click.group()
def deploy() -> None:
    """Write deployment files for running the benchmark elsewhere.

    \b
    Example:
      bench deploy k8s --servers geometric,chance --out ctbench-k8s.yaml
    """


@deploy.command("k8s")
@click.option("--servers", default="geometric,blind,chance", show_default=True, help="Registry servers, `all` or `a,b`.")
@click.option("--registry", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Registry file (default: compose/compose.yaml).")
@click.option("--namespace", default="ctbench", show_default=True)
@click.option("--dataset", default="/data/dataset.jsonl", show_default=True, help="The dataset file as the runner Job sees it (under the data claim, at /data).")
@click.option("--data-claim", default="ctbench-data", show_default=True, help="PersistentVolumeClaim with the CT volumes, mounted read-only.")
@click.option("--weights-claim", default="ctbench-weights", show_default=True, help="PersistentVolumeClaim with a folder per model, mounted read-only at /weights.")
@click.option("--runs-claim", default="ctbench-runs", show_default=True, help="PersistentVolumeClaim the runner Job writes its run folder to.")
@click.option("--runner-image", default="ctbench/base:latest", show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="YAML file to write (owner-only: it holds the run's token).")
@library_errors
def k8s(servers, registry, namespace, dataset, data_claim, weights_claim, runs_claim, runner_image, out) -> None:
    """A Deployment, Service and NetworkPolicy per model, the token Secret and the runner Job.

    Validated offline against the Kubernetes API schemas; never applied to a real cluster here.

    \b
    Example:
      bench deploy k8s --servers geometric,chance --out ctbench-k8s.yaml && kubectl apply -f ctbench-k8s.yaml
    """
    import yaml

    from ctbench.runners.compose_file import load_compose_file, select_servers
    from ctbench.runners.k8s_manifests import K8sOptions, run_manifests

    specs, skipped = select_servers(servers, load_compose_file(registry))
    options = K8sOptions(namespace=namespace, data_claim=data_claim, weights_claim=weights_claim, runs_claim=runs_claim,
                         runner_image=runner_image, dataset=dataset)
    text = yaml.safe_dump_all(run_manifests(specs, options), sort_keys=False)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(out, 0o600)
    click.echo(f"wrote {out}: {len(specs)} servers ({', '.join(s.name for s in specs)}), the token Secret, the runner Job"
               + (f"; skipped {', '.join(skipped)}" if skipped else ""))
