"""docker-compose, Kubernetes manifests and the Dockerfile agree with the code and each other:
every ``perennial`` command line parses with the real CLI, every ``PERENNIAL_*`` variable is a
settings field (and its value validates), and the service (3000 HTTP, 8001 gRPC) and trainer
(9100 metrics) ports are the same everywhere."""

from __future__ import annotations

import contextlib
import fnmatch
import io
import re
from pathlib import Path

import pytest

from .deploy_files import (
    COMPOSE,
    DEPLOY,
    DOCKERIGNORE,
    K8S_DIR,
    ROOT,
    SERVICE_GRPC_PORT,
    SERVICE_HTTP_PORT,
    TRAINER_METRICS_PORT,
    compose,
    compose_argv,
    container_argv,
    dockerfile,
    dockerfile_env,
    dockerfile_stages,
    exec_form,
    image_cmd,
    image_entrypoint,
    is_perennial_image,
    k8s,
    k8s_containers,
    k8s_documents,
    k8s_named,
    load_yaml,
    perennial_invocations,
    pod_spec,
)

PERENNIAL_IMAGE_SERVICES = ("bootstrap", "service", "trainer", "producer")
_ENV_REF = re.compile(r"\$\{?(PERENNIAL_[A-Z0-9_]+)")


# -- settings ---------------------------------------------------------------------------------


def settings_classes() -> list[type]:
    from service.offline_settings import OfflineSettings
    from service.settings import ServiceSettings
    from streaming.settings import TrainerSettings

    return [ServiceSettings, TrainerSettings, OfflineSettings]


def settings_env_names() -> dict[str, list[str]]:
    """``PERENNIAL_X`` → the settings classes that read it."""
    names: dict[str, list[str]] = {}
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        for field in cls.model_fields:
            names.setdefault(f"{prefix}{field}".upper(), []).append(cls.__name__)
    return names


def _compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _interpolate(value: str) -> str:
    """docker compose's ``${VAR:-default}`` with the host environment empty."""
    return re.sub(r"\$\{[A-Za-z_]\w*(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)


def env_sources() -> list[tuple[str, dict[str, str]]]:
    """(where, environment) for every place deploy/ or the Dockerfile sets variables."""
    out = [("Dockerfile ENV", dockerfile_env())]
    for name, svc in compose()["services"].items():
        out.append((f"docker-compose service {name}", _compose_env(svc)))
    for cm in k8s("ConfigMap"):
        out.append((f"ConfigMap {cm['metadata']['name']}", {k: str(v) for k, v in cm.get("data", {}).items()}))
    for secret in k8s("Secret"):
        out.append((f"Secret {secret['metadata']['name']}", dict(secret.get("stringData", {}))))
    for where, c in k8s_containers():
        out.append((f"{where} container {c['name']}", {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}))
    return out


def referenced_env_names() -> dict[str, str]:
    """``PERENNIAL_*`` names referenced as ``$NAME``/``${NAME}`` in the files → file."""
    refs: dict[str, str] = {}
    for path in [COMPOSE, ROOT / "Dockerfile", *sorted(K8S_DIR.glob("*.yaml"))]:
        for name in _ENV_REF.findall(path.read_text(encoding="utf-8")):
            refs.setdefault(name, path.name)
    return refs


def test_every_perennial_variable_is_a_settings_field() -> None:
    known = settings_env_names()
    unknown = []
    for where, env in env_sources():
        unknown += [f"{where}: {k}" for k in env if k.startswith("PERENNIAL_") and k not in known]
    unknown += [f"{path}: ${name}" for name, path in referenced_env_names().items() if name not in known]
    assert not unknown, "PERENNIAL_* variables that no settings class reads:\n" + "\n".join(unknown)


def _validate(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from pydantic import ValidationError

    with monkeypatch.context() as m:
        for key in list(__import__("os").environ):
            if key.startswith("PERENNIAL_"):
                m.delenv(key)
        for key, value in env.items():
            if key.startswith("PERENNIAL_"):
                m.setenv(key, _interpolate(value))
        for cls in settings_classes():
            try:
                cls()
            except ValidationError as e:  # pragma: no cover - the failure message is the point
                pytest.fail(f"{where}: {cls.__name__} rejects the environment: {e}")


def test_settings_accept_the_values_deploy_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every container's PERENNIAL_* values validate (image ENV, then compose or k8s on top)."""
    image = dockerfile_env()
    for name in PERENNIAL_IMAGE_SERVICES:
        env = {**image, **_compose_env(compose()["services"][name])}
        _validate(env, monkeypatch, f"docker-compose service {name}")
    config = {k: str(v) for cm in k8s("ConfigMap") for k, v in cm.get("data", {}).items()}
    secrets = {k: str(v) for s in k8s("Secret") for k, v in s.get("stringData", {}).items()}
    for where, c in k8s_containers():
        env = {**image, **config, **secrets, **{e["name"]: str(e.get("value", "")) for e in c.get("env", [])}}
        _validate(env, monkeypatch, where)


# -- command lines ----------------------------------------------------------------------------


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `perennial`) for every perennial invocation in deploy/ and the image."""
    out = [("Dockerfile ENTRYPOINT+CMD", argv) for argv in perennial_invocations(image_entrypoint() + image_cmd())]
    for name, svc in compose()["services"].items():
        out += [(f"docker-compose service {name}", argv) for argv in perennial_invocations(compose_argv(svc))]
    for where, c in k8s_containers():
        default = None if is_perennial_image(c.get("image")) else []
        argv = container_argv(c.get("command", default), c.get("args"))
        out += [(f"{where} container {c['name']}", a) for a in perennial_invocations(argv)]
    return out


def _parse(argv: list[str]):
    from service.cli import build_parser

    # Shell variables stand for paths or names here; any value exercises the flag.
    argv = [re.sub(r"\$\{?\w+\}?", "placeholder", a) for a in argv]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser().parse_args(argv), ""
        except SystemExit:
            return None, err.getvalue()


def test_deploy_files_run_the_commands_they_need() -> None:
    used = {argv[0] for _, argv in command_lines() if argv}
    assert {"serve", "train", "bootstrap"} <= used, f"perennial commands used: {used}"


@pytest.mark.parametrize("where,argv", command_lines(), ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_command_line_parses_with_the_real_cli(where: str, argv: list[str]) -> None:
    args, error = _parse(argv)
    assert args is not None, f"{where}: `perennial {' '.join(argv)}` is refused by the CLI:\n{error}"
    assert getattr(args, "func", None), f"{where}: `perennial {' '.join(argv)}` runs no command"


def _flag(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


# -- ports ------------------------------------------------------------------------------------


def test_code_defaults_are_the_deploy_ports() -> None:
    from service.settings import ServiceSettings

    fields = ServiceSettings.model_fields
    assert fields["port"].default == SERVICE_HTTP_PORT
    assert fields["grpc_port"].default == SERVICE_GRPC_PORT


def test_dockerfile_ports() -> None:
    exposed = {int(p.split("/")[0]) for i, a in dockerfile_stages()[-1] if i == "EXPOSE" for p in a.split()}
    assert {SERVICE_HTTP_PORT, SERVICE_GRPC_PORT, TRAINER_METRICS_PORT} <= exposed, exposed
    env = dockerfile_env()
    assert env.get("PERENNIAL_PORT") == str(SERVICE_HTTP_PORT)
    assert env.get("PERENNIAL_GRPC_PORT") == str(SERVICE_GRPC_PORT)
    assert env.get("PERENNIAL_METRICS_PORT") == str(TRAINER_METRICS_PORT)
    health = " ".join(a for i, a in dockerfile_stages()[-1] if i == "HEALTHCHECK")
    assert f":{SERVICE_HTTP_PORT}/v2/health/ready" in health, health


def _container_ports(ports: list) -> set[int]:
    out = set()
    for p in ports:
        if isinstance(p, dict):
            out.add(int(p["target"]))
        else:
            out.add(int(str(p).split("/")[0].split(":")[-1]))
    return out


def test_compose_ports() -> None:
    services = compose()["services"]
    svc = services["service"]
    argv = perennial_invocations(compose_argv(svc))[0]
    assert argv[0] == "serve"
    assert int(_flag(argv, "--port") or SERVICE_HTTP_PORT) == SERVICE_HTTP_PORT
    assert int(_flag(argv, "--grpc-port") or SERVICE_GRPC_PORT) == SERVICE_GRPC_PORT
    assert _container_ports(svc["ports"]) == {SERVICE_HTTP_PORT, SERVICE_GRPC_PORT}
    assert f":{SERVICE_HTTP_PORT}/v2/health/ready" in " ".join(svc["healthcheck"]["test"])

    trainer = services["trainer"]
    argv = perennial_invocations(compose_argv(trainer))[0]
    assert argv[0] == "train" and int(_flag(argv, "--metrics-port")) == TRAINER_METRICS_PORT
    assert TRAINER_METRICS_PORT in {int(p) for p in trainer.get("expose", [])} | _container_ports(trainer.get("ports", []))
    assert f":{TRAINER_METRICS_PORT}/metrics" in " ".join(trainer["healthcheck"]["test"])


def _named_ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}


def _probe_port(probe: dict, container: dict) -> int:
    port = probe["httpGet"]["port"]
    return _named_ports(container)[port] if isinstance(port, str) else int(port)


def _workload_for_service(service: dict) -> dict:
    selector = service["spec"]["selector"]
    for w in k8s("Deployment"):
        labels = w["spec"]["template"]["metadata"]["labels"]
        if all(labels.get(k) == v for k, v in selector.items()):
            return w
    raise AssertionError(f"Service {service['metadata']['name']} selects no Deployment's pods ({selector})")


def test_k8s_service_ports_and_probes() -> None:
    dep = k8s_named("Deployment", "perennial-service")
    (c,) = pod_spec(dep)["containers"]
    argv = perennial_invocations(container_argv(c.get("command"), c.get("args")))[0]
    assert argv[0] == "serve"
    assert int(_flag(argv, "--port") or SERVICE_HTTP_PORT) == SERVICE_HTTP_PORT
    assert int(_flag(argv, "--grpc-port") or SERVICE_GRPC_PORT) == SERVICE_GRPC_PORT
    assert set(_named_ports(c).values()) == {SERVICE_HTTP_PORT, SERVICE_GRPC_PORT}
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            assert _probe_port(c[probe], c) == SERVICE_HTTP_PORT, probe


def test_k8s_trainer_ports_and_replicas() -> None:
    trainers = [d for d in k8s("Deployment") if d["metadata"]["name"].startswith("perennial-trainer")]
    assert trainers, "no trainer Deployment"
    for dep in trainers:
        assert dep["spec"]["replicas"] == 2, "active trainer + hot standby"
        (c,) = pod_spec(dep)["containers"]
        argv = perennial_invocations(container_argv(c.get("command"), c.get("args")))[0]
        assert argv[0] == "train" and _flag(argv, "--model")
        port = _flag(argv, "--metrics-port")
        if port is None:
            config = {k: v for cm in k8s("ConfigMap") for k, v in cm.get("data", {}).items()}
            port = config.get("PERENNIAL_METRICS_PORT")
        assert int(port) == TRAINER_METRICS_PORT
        assert TRAINER_METRICS_PORT in _named_ports(c).values()
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in c:
                assert _probe_port(c[probe], c) == TRAINER_METRICS_PORT


def test_k8s_services_target_container_ports() -> None:
    for svc in k8s("Service"):
        dep = _workload_for_service(svc)
        (c,) = pod_spec(dep)["containers"]
        named = _named_ports(c)
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            port = named.get(target) if isinstance(target, str) else target
            assert port == p["port"], f"Service {svc['metadata']['name']} port {p} does not reach {named}"


def test_k8s_servicemonitors_scrape_named_service_ports() -> None:
    monitors = k8s("ServiceMonitor")
    assert monitors and all(m["apiVersion"] == "monitoring.coreos.com/v1" for m in monitors)
    scraped = {}
    for m in monitors:
        want = m["spec"]["selector"]["matchLabels"]
        matches = [s for s in k8s("Service") if all(s["metadata"].get("labels", {}).get(k) == v for k, v in want.items())]
        assert len(matches) == 1, f"ServiceMonitor {m['metadata']['name']} selects {len(matches)} Services"
        svc = matches[0]
        ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
        for ep in m["spec"]["endpoints"]:
            assert ep["port"] in ports, f"ServiceMonitor {m['metadata']['name']}: no port {ep['port']!r} on {ports}"
            assert ep.get("path", "/metrics") == "/metrics"
            scraped[svc["metadata"]["name"]] = ports[ep["port"]]
    assert scraped == {"perennial-service": SERVICE_HTTP_PORT, "perennial-trainer": TRAINER_METRICS_PORT}


# -- compose ----------------------------------------------------------------------------------


def test_compose_has_kafka_kraft_prometheus_grafana_service_trainer() -> None:
    services = compose()["services"]
    assert {"kafka", "prometheus", "grafana", "service", "trainer"} <= services.keys()
    assert not any("zookeeper" in n or "zookeeper" in str(s.get("image", "")) for n, s in services.items())
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _compose_env(kafka)
    assert {"broker", "controller"} <= set(env["KAFKA_PROCESS_ROLES"].split(",")), "KRaft: broker and controller"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    for name in PERENNIAL_IMAGE_SERVICES:
        svc = services[name]
        bootstrap = _compose_env(svc).get("PERENNIAL_BOOTSTRAP_SERVERS")
        for argv in perennial_invocations(compose_argv(svc)):
            bootstrap = _flag(argv, "--bootstrap-servers") or bootstrap
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


def test_k8s_secret_holds_the_registry_key_and_admin_token() -> None:
    keys = {k for s in k8s("Secret") for k in {**s.get("stringData", {}), **s.get("data", {})}}
    assert {"PERENNIAL_REGISTRY_KEY", "PERENNIAL_ADMIN_TOKEN"} <= keys


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
