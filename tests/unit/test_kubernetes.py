"""deploy/kubernetes, offline: both overlays render, every object validates against the
Kubernetes schemas (kubernetes-validate, strict) and the custom resources against the
operators' CRD schemas vendored in deploy/kubernetes/crds; and the manifests say what the
platform needs (probes, grace above the shutdown bound, budgets, autoscalers, migrations)."""

from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from clinic.settings import SERVICES
from clinic.supervisor import PROCESSES

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("staging", "production")
KUBERNETES_VERSION = "1.30.0"
OPERATOR_SECRETS = {"clinic-rabbitmq-default-user"}  # written by the RabbitMQ operator

_spec = importlib.util.spec_from_file_location("kube_render", KUBE / "render.py")
kube_render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kube_render)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> list[dict[str, Any]]:
    """The overlay as an operator renders it: secrets files made from their examples."""
    tree = tmp_path_factory.mktemp("kube") / "kubernetes"
    shutil.copytree(KUBE, tree)
    for example in tree.glob("overlays/*/*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return kube_render.render(tree / "overlays" / request.param)


def by_kind(objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the vendored CRDs."""
    found = {}
    for path in (KUBE / "crds").glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                found[key] = version["schema"]["openAPIV3Schema"]
    return found


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune silently (a typo there is lost without a word)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        problems = []
        for key, item in value.items():
            if key in schema["properties"]:
                problems += unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("additionalProperties"):
                problems.append(f"{path}.{key}")
        return problems
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return [p for k, v in value.items()
                for p in unknown_fields(v, schema["additionalProperties"], f"{path}.{k}")]
    if isinstance(value, list) and "items" in schema:
        return [p for i, v in enumerate(value)
                for p in unknown_fields(v, schema["items"], f"{path}[{i}]")]
    return []


def test_every_builtin_object_validates_against_the_kubernetes_schemas(rendered):
    schemas = crd_schemas()
    builtin = [o for o in rendered if (o["apiVersion"], o["kind"]) not in schemas]
    assert len(builtin) >= 15
    for obj in builtin:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_custom_resources_validate_against_the_operators_crds(rendered):
    schemas = crd_schemas()
    custom = [o for o in rendered if (o["apiVersion"], o["kind"]) in schemas]
    assert {o["kind"] for o in custom} == {"RabbitmqCluster", "Cluster"}
    for obj in custom:
        schema = schemas[(obj["apiVersion"], obj["kind"])]
        jsonschema.validate(obj, schema)
        assert unknown_fields(obj, schema) == [], obj["kind"]
    assert by_kind(rendered, "RabbitmqCluster")["clinic-rabbitmq"]["spec"]["replicas"] == 3
    postgres = by_kind(rendered, "Cluster")["clinic-postgres"]["spec"]
    assert postgres["instances"] == 3
    made = {postgres["bootstrap"]["initdb"]["database"]} | {
        line.split()[2] for line in postgres["bootstrap"]["initdb"]["postInitSQL"]}
    assert set(SERVICES) <= made | {"progress"} and "progress" in made


def test_the_validators_catch_a_broken_manifest(rendered):
    deployment = dict(by_kind(rendered, "Deployment")["clinic-booking"])
    deployment["spec"] = {**deployment["spec"], "replicas": "three"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    cluster = by_kind(rendered, "RabbitmqCluster")["clinic-rabbitmq"]
    typo = {**cluster, "spec": {**cluster["spec"], "replica": 3}}
    assert unknown_fields(typo, crd_schemas()[("rabbitmq.com/v1beta1", "RabbitmqCluster")]) == [
        ".spec.replica"]


def test_a_deployment_per_process_with_probes_resources_and_a_bounded_stop(rendered):
    deployments = by_kind(rendered, "Deployment")
    config = by_kind(rendered, "ConfigMap")["clinic-config"]["data"]
    shutdown = float(config["SHUTDOWN_TIMEOUT_SECONDS"])
    for name, (config_file, target) in {**PROCESSES, "progress": (
            "services/progress/config.yml", "services.progress.service:ProgressService")}.items():
        pod = deployments[f"clinic-{name}"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"][-3:] == ["--config", config_file, target]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert {"requests", "limits"} <= container["resources"].keys()
        assert pod["terminationGracePeriodSeconds"] > shutdown
        env = {e["name"] for e in container.get("env", [])}
        assert "AMQP_URI" in env
        if name != "gateway":
            assert f"{name.upper()}_DATABASE_URL" in env
            assert container["readinessProbe"]["exec"]["command"][-2:] == [
                "clinic.healthcheck", name]
            assert pod["initContainers"][0]["command"] == ["python", "-m", "clinic.migrate", name]


def test_budgets_autoscalers_migrations_secrets_and_ingress_fit_together(rendered):
    deployments = by_kind(rendered, "Deployment")
    budgets = by_kind(rendered, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budget = budgets[name]["spec"]["selector"]["matchLabels"]
        assert budget.items() <= labels.items()
    targets = {h["spec"]["scaleTargetRef"]["name"]
               for h in by_kind(rendered, "HorizontalPodAutoscaler").values()}
    assert targets == {"clinic-gateway", "clinic-booking"} and targets <= deployments.keys()

    job = by_kind(rendered, "Job")["clinic-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["python", "-m", "clinic.migrate"]
    assert {f"{s.upper()}_DATABASE_URL" for s in SERVICES} <= {e["name"] for e in job["env"]}

    secrets = set(by_kind(rendered, "Secret")) | OPERATOR_SECRETS
    assert {"clinic-secrets", "clinic-postgres-credentials"} <= secrets
    assert "CLINIC_ADMIN_TOKEN" in by_kind(rendered, "Secret")["clinic-secrets"]["data"]
    for workload in [*deployments.values(), by_kind(rendered, "Job")["clinic-migrate"]]:
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            referenced = {e["valueFrom"]["secretKeyRef"]["name"]
                          for e in container.get("env", []) if "valueFrom" in e} | {
                e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
            assert referenced <= secrets, workload["metadata"]["name"]

    backend = by_kind(rendered, "Ingress")["clinic-gateway"]["spec"]["rules"][0]["http"][
        "paths"][0]["backend"]["service"]
    service = by_kind(rendered, "Service")[backend["name"]]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
