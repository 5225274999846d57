"""Readers for the files under deploy/ and the Dockerfile, shared by the deploy tests.

>>> parse_dockerfile('FROM a AS b\\n# c\\nRUN x \\\\\\n  y\\nCMD ["serve"]\\n')
[('FROM', 'a AS b'), ('RUN', 'x y'), ('CMD', '["serve"]')]
>>> perennial_invocations(['/bin/sh', '-c', 'test -e x || exec perennial train --model m'])
[['train', '--model', 'm']]
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
K8S_DIR = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: The ports the deploy files must agree on (and the code's defaults, where it has them).
SERVICE_HTTP_PORT = 3000
SERVICE_GRPC_PORT = 8001
TRAINER_METRICS_PORT = 9100
SERVICE_JOB, TRAINER_JOB = "perennial-service", "perennial-trainer"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


@cache
def compose() -> dict:
    return load_yaml(COMPOSE)


@cache
def k8s_documents() -> tuple[tuple[str, dict], ...]:
    """(file name, document) for every manifest in deploy/k8s (kustomization.yaml aside)."""
    out = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path.name, doc) for doc in load_yaml_all(path)]
    return tuple(out) + generated_secrets()


def generated_secrets() -> tuple[tuple[str, dict], ...]:
    """The Secrets kustomize generates (``secretGenerator``), with the keys generate-secrets.sh
    writes and no values: the repository ships none."""
    import re

    script = (K8S_DIR / "generate-secrets.sh").read_text(encoding="utf-8")
    keys = re.findall(r'echo "(PERENNIAL_\w+)=', script)
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    return tuple(("kustomization.yaml", {"apiVersion": "v1", "kind": "Secret",
                                         "metadata": {"name": g["name"]}, "stringData": dict.fromkeys(keys, "")})
                 for g in kustomization.get("secretGenerator", []))


def k8s(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_documents() if doc.get("kind") == kind]


def k8s_named(kind: str, name: str) -> dict:
    found = [d for d in k8s(kind) if d["metadata"]["name"] == name]
    assert found, f"deploy/k8s has no {kind} named {name!r}; it has {[d['metadata']['name'] for d in k8s(kind)]}"
    return found[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


# -- Dockerfile -------------------------------------------------------------------------------


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            instr, _, args = line.partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


@cache
def dockerfile() -> tuple[tuple[str, str], ...]:
    return tuple(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (each starts with FROM)."""
    stages: list[list[tuple[str, str]]] = []
    for instr, args in dockerfile():
        if instr == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instr, args))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON (exec form) argument list, or the shell form as ``/bin/sh -c ARGS``."""
    args = args.strip()
    if args.startswith("["):
        return json.loads(args)
    return ["/bin/sh", "-c", args]


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (``ENV K=V K2=V2`` and ``ENV K V`` forms)."""
    env: dict[str, str] = {}
    for instr, args in dockerfile_stages()[-1]:
        if instr != "ENV":
            continue
        tokens = shlex.split(args)
        if tokens and "=" not in tokens[0]:
            env[tokens[0]] = " ".join(tokens[1:])
        else:
            env.update(t.split("=", 1) for t in tokens)
    return env


def image_entrypoint() -> list[str]:
    entry = [a for i, a in dockerfile_stages()[-1] if i == "ENTRYPOINT"]
    return exec_form(entry[-1]) if entry else []


def image_cmd() -> list[str]:
    cmd = [a for i, a in dockerfile_stages()[-1] if i == "CMD"]
    return exec_form(cmd[-1]) if cmd else []


# -- command lines ------------------------------------------------------------------------------

_SHELL_SPLIT = re.compile(r"\|\||&&|;|\|")


def perennial_invocations(argv: list[str]) -> list[list[str]]:
    """The argument lists given to ``perennial`` in a container command.

    Exec form (``["perennial", "serve", ...]``) and shell strings (``sh -c "... perennial
    train ..."``) are both searched.
    """
    found: list[list[str]] = []
    if not argv:
        return found
    if Path(argv[0]).name == "perennial":
        found.append(list(argv[1:]))
    elif Path(argv[0]).name in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
        for part in _SHELL_SPLIT.split(argv[2]):
            tokens = shlex.split(part)
            while tokens and tokens[0] in ("exec", "then", "else", "do"):
                tokens = tokens[1:]
            if tokens and Path(tokens[0]).name == "perennial":
                found.append(tokens[1:])
    return found


def container_argv(command: list[str] | str | None, args: list[str] | str | None,
                   entrypoint: list[str] | None = None) -> list[str]:
    """What a container runs: its command (or the image ENTRYPOINT) followed by its args
    (or, with neither override, the image CMD)."""
    def as_list(x: list[str] | str | None) -> list[str] | None:
        if x is None:
            return None
        return shlex.split(x) if isinstance(x, str) else [str(a) for a in x]

    cmd, arg = as_list(command), as_list(args)
    if cmd is None:
        cmd = entrypoint if entrypoint is not None else image_entrypoint()
        if arg is None:
            arg = image_cmd()
    return cmd + (arg or [])


def is_perennial_image(image: str | None) -> bool:
    return bool(image) and image.split("/")[-1].split(":")[0] == "perennial"


def compose_argv(service: dict) -> list[str]:
    """What a compose service runs; the image's ENTRYPOINT/CMD count only for our image."""
    entry = service.get("entrypoint")
    if isinstance(entry, str):
        entry = shlex.split(entry)
    if entry is not None:
        return container_argv(entry, service.get("command"))
    if not is_perennial_image(service.get("image")):
        return container_argv([], service.get("command"))
    return container_argv(None, service.get("command"))


def k8s_containers() -> list[tuple[str, dict]]:
    """(workload name, container) for every container of every workload."""
    out = []
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        for w in k8s(kind):
            for c in pod_spec(w).get("containers", []) + pod_spec(w).get("initContainers", []):
                out.append((f"{kind}/{w['metadata']['name']}", c))
    return out


# -- promtool ---------------------------------------------------------------------------------


def promtool_path() -> str | None:
    return shutil.which("promtool")


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = promtool_path()
    assert exe, "promtool is not installed"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


#: compose services that run the Perennial image
PERENNIAL_IMAGE_SERVICES = ("bootstrap", "service", "trainer", "producer")


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def flag_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None
