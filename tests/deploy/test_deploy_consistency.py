"""docker-compose, Kubernetes manifests and the Dockerfile agree with the code and each other:
every ``perennial`` command line parses with the real CLI, every ``PERENNIAL_*`` variable is a
settings field (and its value validates), and the service (3000 HTTP, 8001 gRPC) and trainer
(9100 metrics) ports are the same everywhere."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from .deploy_files import (
    COMPOSE,
    K8S_DIR,
    PERENNIAL_IMAGE_SERVICES,
    ROOT,
    SERVICE_GRPC_PORT,
    SERVICE_HTTP_PORT,
    TRAINER_METRICS_PORT,
    compose,
    compose_argv,
    compose_env,
    container_argv,
    dockerfile_env,
    dockerfile_stages,
    flag_value,
    image_cmd,
    image_entrypoint,
    is_perennial_image,
    k8s,
    k8s_containers,
    k8s_named,
    perennial_invocations,
    pod_spec,
)

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


def _interpolate(value: str) -> str:
    """docker compose's ``${VAR:-default}`` with the host environment empty."""
    return re.sub(r"\$\{[A-Za-z_]\w*(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)


def env_sources() -> list[tuple[str, dict[str, str]]]:
    """(where, environment) for every place deploy/ or the Dockerfile sets variables."""
    out = [("Dockerfile ENV", dockerfile_env())]
    for name, svc in compose()["services"].items():
        out.append((f"docker-compose service {name}", compose_env(svc)))
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
        env = {**image, **compose_env(compose()["services"][name])}
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
    assert int(flag_value(argv, "--port") or SERVICE_HTTP_PORT) == SERVICE_HTTP_PORT
    assert int(flag_value(argv, "--grpc-port") or SERVICE_GRPC_PORT) == SERVICE_GRPC_PORT
    assert _container_ports(svc["ports"]) == {SERVICE_HTTP_PORT, SERVICE_GRPC_PORT}
    assert f":{SERVICE_HTTP_PORT}/v2/health/ready" in " ".join(svc["healthcheck"]["test"])

    trainer = services["trainer"]
    argv = perennial_invocations(compose_argv(trainer))[0]
    assert argv[0] == "train" and int(flag_value(argv, "--metrics-port")) == TRAINER_METRICS_PORT
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
    assert int(flag_value(argv, "--port") or SERVICE_HTTP_PORT) == SERVICE_HTTP_PORT
    assert int(flag_value(argv, "--grpc-port") or SERVICE_GRPC_PORT) == SERVICE_GRPC_PORT
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
        assert argv[0] == "train" and flag_value(argv, "--model")
        port = flag_value(argv, "--metrics-port")
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
