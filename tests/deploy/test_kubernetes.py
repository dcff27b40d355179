"""The Kubernetes manifests (#18), validated by the `kubernetes` client's own models (unknown
or misspelt fields, wrong types and missing required fields fail), then checked for the
deployment's shape: two `lore serve --no-jobs` replicas probed on /healthz, one worker."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.deploy.deployment_files import kubernetes_documents, kubernetes_objects, pod_containers

DOCUMENTS = [pytest.param(document, id=f"{path.name}:{document['kind']}") for path, document in kubernetes_documents()]


def lore_args(workload: dict[str, Any]) -> list[str]:
    (container,) = pod_containers(workload)
    return [*container.get("command", ["lore"]), *container.get("args", [])]


def workloads(role: str) -> list[dict[str, Any]]:
    return [w for w in kubernetes_objects("Deployment") if lore_args(w)[:2] == ["lore", role]]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_each_object_is_valid_for_the_kubernetes_api(document: dict[str, Any]) -> None:
    version = document["apiVersion"].split("/")[-1].capitalize()
    model = getattr(client, f"{version}{document['kind']}")
    model.model_validate(document)  # extra fields are forbidden in the client's models


def test_two_replicas_answer_without_jobs_and_one_worker_runs_them() -> None:
    (bot,) = workloads("serve")
    assert bot["spec"]["replicas"] == 2
    assert "--no-jobs" in lore_args(bot)
    args = lore_args(bot)
    assert args[args.index("--host") + 1] == "0.0.0.0"
    (worker,) = workloads("worker")
    assert worker["spec"]["replicas"] == 1
    assert worker["spec"]["strategy"]["type"] == "Recreate"


def test_the_replicas_are_probed_on_healthz_at_the_port_they_serve() -> None:
    (bot,) = workloads("serve")
    (container,) = pod_containers(bot)
    args = lore_args(bot)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert ports.get(get["port"], get["port"]) == int(args[args.index("--port") + 1]), probe


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_every_pod_runs_as_a_non_root_user_with_resources(kind: str) -> None:
    for workload in kubernetes_objects(kind):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            mounts = {mount["name"] for mount in container.get("volumeMounts", [])}
            volumes = {volume["name"] for volume in pod.get("volumes", [])}
            templates = {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounts <= volumes | templates, f"{workload['metadata']['name']} mounts undeclared volumes"


def test_services_and_ingress_reach_pods_that_exist() -> None:
    pods = [w["spec"]["template"] for kind in ("Deployment", "StatefulSet") for w in kubernetes_objects(kind)]
    services = {service["metadata"]["name"]: service for service in kubernetes_objects("Service")}
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matching = [pod for pod in pods if selector.items() <= pod["metadata"]["labels"].items()]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} workloads"
        names = {port["name"] for c in matching[0]["spec"]["containers"] for port in c.get("ports", [])}
        assert all(port["targetPort"] in names for port in service["spec"]["ports"]), name
    (ingress,) = kubernetes_objects("Ingress")
    (bot,) = workloads("serve")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = services[backend["name"]]
            assert service["spec"]["selector"].items() <= bot["spec"]["template"]["metadata"]["labels"].items()
            assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


def test_chroma_and_postgresql_are_where_the_pods_look() -> None:
    services = {service["metadata"]["name"]: service for service in kubernetes_objects("Service")}
    (secret,) = kubernetes_objects("Secret")
    assert secret["stringData"]["LORE_DATABASE_URL"].startswith("postgresql+psycopg://"), (
        "PostgreSQL is external: the Secret names it"
    )
    for workload in [*workloads("serve"), *workloads("worker")]:
        (container,) = pod_containers(workload)
        env = {item["name"]: item["value"] for item in container["env"]}
        chroma = services[env["LORE_INDEX__CHROMA_HOST"]]
        assert [port["port"] for port in chroma["spec"]["ports"]] == [int(env["LORE_INDEX__CHROMA_PORT"])]
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]


def test_the_worker_alone_mounts_the_documents_read_only_and_its_own_lore_home() -> None:
    """Only the worker refreshes and trains: it alone sees the documents and keeps a LORE_HOME
    on a claim; the replicas keep nothing (everything they share is in PostgreSQL and Chroma)."""
    (config,) = kubernetes_objects("ConfigMap")
    folders = {source["path"] for source in tomllib.loads(config["data"]["lore.toml"])["sources"]}
    claims = {claim["metadata"]["name"] for claim in kubernetes_objects("PersistentVolumeClaim")}

    def mounted(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
        (container,) = pod_containers(workload)
        volumes = {volume["name"]: volume for volume in workload["spec"]["template"]["spec"]["volumes"]}
        return {mount["mountPath"]: {**mount, **volumes[mount["name"]]} for mount in container["volumeMounts"]}

    (worker,) = workloads("worker")
    (bot,) = workloads("serve")
    for folder in folders:
        assert mounted(worker)[folder]["readOnly"] is True
        assert folder not in mounted(bot)
    assert mounted(worker)["/var/lib/lore"]["persistentVolumeClaim"]["claimName"] in claims
    assert "/var/lib/lore" not in mounted(bot)
    for workload in (worker, bot):
        assert mounted(workload)["/etc/lore"]["configMap"]["name"] == config["metadata"]["name"]
        assert mounted(workload)["/etc/lore"]["readOnly"] is True


def test_kustomization_lists_every_manifest() -> None:
    import yaml

    folder = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
    listed = yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
