"""The deploy files' own shape: docker-compose runs Kafka in KRaft mode beside Prometheus,
Grafana, the service and a trainer; the Kubernetes manifests cover the deployment (probes,
HPA, two trainers, shared registry volume, secrets, non-root); the Dockerfile is multi-stage,
non-root, health-checked and installs a CUDA-capable torch. Agreement with the code (CLI,
settings, ports) is in ``test_deploy_consistency.py``."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from .deploy_files import (
    COMPOSE,
    DEPLOY,
    DOCKERIGNORE,
    K8S_DIR,
    PERENNIAL_IMAGE_SERVICES,
    ROOT,
    compose,
    compose_argv,
    compose_env,
    dockerfile,
    dockerfile_env,
    dockerfile_stages,
    exec_form,
    flag_value,
    image_cmd,
    image_entrypoint,
    k8s,
    k8s_containers,
    k8s_documents,
    k8s_named,
    load_yaml,
    perennial_invocations,
    pod_spec,
)

# -- compose ----------------------------------------------------------------------------------


def test_compose_has_kafka_kraft_prometheus_grafana_service_trainer() -> None:
    services = compose()["services"]
    assert {"kafka", "prometheus", "grafana", "service", "trainer"} <= services.keys()
    assert not any("zookeeper" in n or "zookeeper" in str(s.get("image", "")) for n, s in services.items())
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = compose_env(kafka)
    assert {"broker", "controller"} <= set(env["KAFKA_PROCESS_ROLES"].split(",")), "KRaft: broker and controller"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    for name in PERENNIAL_IMAGE_SERVICES:
        svc = services[name]
        bootstrap = compose_env(svc).get("PERENNIAL_BOOTSTRAP_SERVERS")
        for argv in perennial_invocations(compose_argv(svc)):
            bootstrap = flag_value(argv, "--bootstrap-servers") or bootstrap
        assert bootstrap and bootstrap in advertised, f"{name}: bootstrap servers {bootstrap} not in {advertised}"
        assert "build" in svc and (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()


def test_compose_depends_on_and_volumes_exist() -> None:
    doc = compose()
    services, volumes = doc["services"], doc.get("volumes", {})
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown service {dep}"
        for v in svc.get("volumes", []):
            source = v.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in volumes, f"{name}: volume {source} not declared"
    registry = {v for n in ("service", "trainer", "bootstrap") for v in services[n]["volumes"] if v.startswith("registry:")}
    assert len(registry) == 1, f"service, trainer and bootstrap must share one registry volume: {registry}"


def test_compose_prometheus_mounts_the_checked_config() -> None:
    prom = compose()["services"]["prometheus"]
    mounts = {v.split(":")[1]: (COMPOSE.parent / v.split(":")[0]).resolve() for v in prom["volumes"] if v.startswith(".")}
    config_arg = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_path = Path(config_arg.split("=", 1)[1])
    host_dir = mounts[str(config_path.parent)]
    assert (host_dir / config_path.name).resolve() == (DEPLOY / "prometheus" / "prometheus.yml").resolve()


# -- Kubernetes -------------------------------------------------------------------------------


def test_k8s_manifests_parse_and_cover_the_deployment() -> None:
    docs = [d for _, d in k8s_documents()]
    assert all({"apiVersion", "kind", "metadata"} <= d.keys() and d["metadata"].get("name") for d in docs)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret",
            "PersistentVolumeClaim", "ServiceMonitor"} <= kinds, kinds
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(set(names)) == len(names), "duplicate manifests"


def test_k8s_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_k8s_hpa_scales_the_service() -> None:
    (hpa,) = k8s("HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["name"] == "perennial-service"
    k8s_named("Deployment", ref["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    resources = pod_spec(k8s_named("Deployment", "perennial-service"))["containers"][0]["resources"]
    assert resources["requests"].get("cpu"), "HPA on CPU utilization needs a CPU request"


def test_k8s_secret_holds_the_registry_key_and_tokens() -> None:
    keys = {k for s in k8s("Secret") for k in {**s.get("stringData", {}), **s.get("data", {})}}
    assert {"PERENNIAL_REGISTRY_KEY", "PERENNIAL_ADMIN_TOKEN", "PERENNIAL_FEEDBACK_TOKEN"} <= keys


def test_no_secret_value_is_shipped() -> None:
    """Secrets are generated (k8s) or required (compose), never a placeholder in the repository."""
    import re

    from streaming.secrets import is_known_placeholder

    for secret in k8s("Secret"):
        assert not any(secret.get("stringData", {}).values()), secret["metadata"]["name"]
    text = COMPOSE.read_text(encoding="utf-8")
    defaults = re.findall(r"\$\{(PERENNIAL_\w*(?:KEY|TOKEN))(:?[-?])?([^}]*)\}", text)
    assert any(name == "PERENNIAL_REGISTRY_KEY" and op == ":?" for name, op, _ in defaults), defaults
    assert not [d for d in defaults if d[1] == ":-" and d[2]], "a compose default for a secret"
    for path in [*K8S_DIR.glob("*.yaml"), COMPOSE]:
        for value in re.findall(r"(?:KEY|TOKEN)\W+([\w-]{6,})", path.read_text(encoding="utf-8")):
            assert not is_known_placeholder(value), f"{path.name}: {value}"


def test_k8s_registry_is_a_shared_read_write_many_volume() -> None:
    claims = {c["metadata"]["name"]: c for c in k8s("PersistentVolumeClaim")}
    assert "ReadWriteMany" in claims["perennial-registry"]["spec"]["accessModes"]
    for where, c in k8s_containers():
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "registry" in mounts, f"{where}: no registry volume"
    for kind in ("Deployment", "Job"):
        for w in k8s(kind):
            for v in pod_spec(w).get("volumes", []):
                if "persistentVolumeClaim" in v:
                    assert v["persistentVolumeClaim"]["claimName"] in claims, f"{w['metadata']['name']}: {v}"


def test_k8s_containers_have_resources_config_refs_and_run_as_non_root() -> None:
    configmaps = {c["metadata"]["name"] for c in k8s("ConfigMap")}
    secrets = {s["metadata"]["name"] for s in k8s("Secret")}
    for kind in ("Deployment", "Job"):
        for w in k8s(kind):
            spec = pod_spec(w)
            assert spec.get("securityContext", {}).get("runAsNonRoot") is True, w["metadata"]["name"]
            for c in spec["containers"]:
                where = f"{w['metadata']['name']}/{c['name']}"
                assert c["resources"].get("requests") and c["resources"].get("limits"), where
                for ref in c.get("envFrom", []):
                    if "configMapRef" in ref:
                        assert ref["configMapRef"]["name"] in configmaps, where
                    if "secretRef" in ref:
                        assert ref["secretRef"]["name"] in secrets, where
                assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, where


# -- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_serve() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build"
    final = stages[-1]
    assert any(i == "COPY" and a.startswith("--from=") for i, a in final), "final stage copies from a build stage"
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"USER {users}"
    assert image_entrypoint() == ["perennial"] and image_cmd() == ["serve"]
    health = [a for i, a in final if i == "HEALTHCHECK"]
    assert health and "/v2/health/ready" in health[-1]
    assert not any(i in ("RUN", "COPY") and "apt-get install" in a and "build-essential" in a for i, a in final), (
        "compilers belong in the build stage"
    )


def test_dockerfile_installs_a_cuda_capable_torch_matching_the_dev_pin() -> None:
    text = " ".join(a for _, a in dockerfile())
    assert "/cpu" not in text and "+cpu" not in text, "the image must not install the CPU-only torch build"
    args = dict(re.findall(r"ARG (\w+)=(\S*)", " ".join(f"{i} {a}" for i, a in dockerfile() if i == "ARG")))
    assert "torch==${TORCH_VERSION}" in text
    makefile_pin = re.search(r"torch==([\w.]+)", (ROOT / "Makefile").read_text(encoding="utf-8"))
    if makefile_pin:
        assert args["TORCH_VERSION"] == makefile_pin.group(1), "same torch version as the development pin"
    env = dockerfile_env()
    assert env.get("NVIDIA_VISIBLE_DEVICES") and "compute" in env.get("NVIDIA_DRIVER_CAPABILITIES", "")


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
            ignored = not negate
    return ignored


def test_dockerfile_copies_existing_paths_the_dockerignore_keeps() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for instr, args in dockerfile():
        if instr != "COPY" or args.startswith("--from="):
            continue
        sources = args.split()[:-1]
        for src in (s for s in sources if not s.startswith("--")):
            assert (ROOT / src).exists(), f"COPY {src}: no such path"
            assert not _ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
    for heavy in (".venv", ".git", ".perennial", "tests"):
        assert _ignored(heavy, patterns), f".dockerignore should exclude {heavy}"


def test_image_healthcheck_and_exec_form_parse() -> None:
    assert exec_form('["a", "b"]') == ["a", "b"]
    assert exec_form("echo hi") == ["/bin/sh", "-c", "echo hi"]
    assert Path(ROOT / "pyproject.toml").is_file()
