"""deploy/: the image definition, the Ray cluster launcher config and the KubeRay manifests agree
with the repository (Ray version, image, shared storage) and their entrypoints are real actionops
commands. No Kubernetes or cloud runs here, so this checks structure, not a live cluster."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RAY = re.search(r"^ray==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)


def _parses(entrypoint: str) -> None:
    """The entrypoint's arguments parse through the real CLI (unknown commands / options fail)."""
    from actionops.cli.main import app

    words = shlex.split(entrypoint)
    assert words[0] == "actionops"
    command = typer.main.get_command(app)  # typer ships its own click: groups known by their commands
    args = words[1:]
    while hasattr(command, "commands"):
        name, args = args[0], args[1:]
        assert name in command.commands, f"no command {name!r} in {entrypoint}"
        command = command.commands[name]
    command.make_context(command.name, list(args))  # raises a usage error on a wrong option


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec["template"]["spec"]["containers"]


def test_dockerfile_installs_the_locked_stack_with_the_ray_dashboard():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "requirements.lock" in text and "ray[default]==" in text and "pip install --no-deps -e ." in text
    assert re.search(r"^FROM python:3\.11", text, re.M)


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob-demo.yaml", "rayjob-tune.yaml"])
def test_kuberay_manifests(name):
    doc = yaml.safe_load((DEPLOY / "kuberay" / name).read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] in ("RayCluster", "RayJob")
    spec = doc["spec"]
    if doc["kind"] == "RayJob":
        _parses(spec["entrypoint"])
        assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)
        if "clusterSelector" in spec:  # the long-lived cluster of raycluster.yaml
            cluster = yaml.safe_load((DEPLOY / "kuberay" / "raycluster.yaml").read_text())
            assert spec["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
            return
        spec = spec["rayClusterSpec"]
    assert spec["rayVersion"] == RAY
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        for container in _containers(group):
            assert container["image"] == "actionops:0.1"
            assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/shared"}
            env = {e["name"]: e["value"] for e in container["env"]}
            assert env["MLFLOW_TRACKING_URI"].startswith("http") and env["ACTIONOPS_STORAGE"].startswith("/shared/")
    ports = {p["containerPort"] for p in _containers(spec["headGroupSpec"])[0]["ports"]}
    assert {6379, 8265, 10001} <= ports
    assert all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in spec["workerGroupSpecs"])


def test_cluster_launcher_config_and_its_commands():
    doc = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    assert doc["provider"]["type"] == "local" and doc["docker"]["image"] == "actionops:0.1"
    assert any("ray start --head" in c for c in doc["head_start_ray_commands"])
    assert any(re.search(r"ray start --address=\S+:6379", c) for c in doc["worker_start_ray_commands"])
    assert any("/shared:/shared" in o for o in doc["docker"]["run_options"])
    submit = [line for line in (DEPLOY / "ray-cluster.yaml").read_text().splitlines() if "ray job submit" in line]
    assert submit
    command = submit[0].split(" -- ", 1)[1].rstrip("\\").strip()
    next_line = (DEPLOY / "ray-cluster.yaml").read_text().split(submit[0], 1)[1].splitlines()[1].lstrip("# ").strip()
    _parses(f"{command} {next_line}")


def test_the_entrypoint_check_rejects_what_the_cli_would():
    for wrong in ("actionops demo --nope", "actionops tune classifierx a", "actionops tune classifier /x --bogus 1"):
        with pytest.raises(Exception):  # an AssertionError (no such command) or a usage error
            _parses(wrong)
