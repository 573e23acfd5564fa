"""Render a kustomize overlay of this folder in pure Python: ``python render.py overlays/NAME``.

``kubectl apply -k`` is what an operator runs; this renders the same objects where kustomize is
not installed (CI validates them offline). It knows only the kustomize features these overlays
use: resources (files and folders), namespace, labels (metadata only), images, replicas,
configMapGenerator and secretGenerator (literals and env files, ``behavior: merge``), and
``generatorOptions.disableNameSuffixHash`` (required: names keep no hash suffix).
"""

from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
KNOWN = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas",
         "configMapGenerator", "secretGenerator", "generatorOptions"}


def _pairs(entry: dict[str, Any], folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for literal in entry.get("literals", []):
        key, _, value = literal.partition("=")
        found[key] = value
    for name in entry.get("envs", []):
        for line in (folder / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                found[key.strip()] = value
    return found


def _generated(kind: str, entry: dict[str, Any], folder: Path) -> Object:
    pairs = _pairs(entry, folder)
    made: Object = {"apiVersion": "v1", "kind": kind, "metadata": {"name": entry["name"]}}
    if kind == "Secret":
        made["type"] = entry.get("type", "Opaque")
        made["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in pairs.items()}
    else:
        made["data"] = pairs
    return made


def _load(path: Path) -> list[Object]:
    if path.is_dir():
        return render(path)
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers(obj: Object) -> list[Object]:
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
    if obj.get("kind") == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    return pod.get("containers", []) + pod.get("initContainers", [])


def render(folder: Path) -> list[Object]:
    """The objects ``kubectl kustomize folder`` would print (in file order, not kind order)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN
    if unknown:
        raise ValueError(f"{folder}: kustomize fields this renderer does not know: {unknown}")
    objects: list[Object] = []
    for resource in spec.get("resources", []):
        objects.extend(copy.deepcopy(_load(folder / resource)))
    options = spec.get("generatorOptions", {})
    generators = [("ConfigMap", e) for e in spec.get("configMapGenerator", [])] + [
        ("Secret", e) for e in spec.get("secretGenerator", [])]
    if generators and not options.get("disableNameSuffixHash"):
        raise ValueError(f"{folder}: generated names need disableNameSuffixHash here")
    for kind, entry in generators:
        made = _generated(kind, entry, folder)
        existing = next((o for o in objects if o["kind"] == kind
                         and o["metadata"]["name"] == entry["name"]), None)
        if entry.get("behavior") == "merge":
            if existing is None:
                raise ValueError(f"{folder}: nothing to merge into for {entry['name']}")
            existing.setdefault("data", {}).update(made["data"])
        elif existing is not None:
            raise ValueError(f"{folder}: {kind} {entry['name']} generated twice")
        else:
            objects.append(made)
    for obj in objects:
        for labels in spec.get("labels", []):
            obj["metadata"].setdefault("labels", {}).update(labels["pairs"])
        if "namespace" in spec and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = spec["namespace"]
        for image in spec.get("images", []):
            for container in _containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = (f"{image.get('newName', name)}:"
                                          f"{image.get('newTag', tag or 'latest')}")
        for replicas in spec.get("replicas", []):
            if obj["metadata"]["name"] == replicas["name"] and obj["kind"] in (
                    "Deployment", "StatefulSet", "ReplicaSet"):
                obj["spec"]["replicas"] = replicas["count"]
    return objects


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(Path(sys.argv[1])), sort_keys=False), end="")
