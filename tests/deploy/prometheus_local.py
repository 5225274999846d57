"""deploy/prometheus/prometheus.yml rewritten for processes on this machine.

The production config scrapes docker-compose names (``service:3000``, DNS ``trainer``); a
test that starts the service and trainers on free local ports needs the same jobs (the alert
rules and dashboards select ``job="perennial-service"`` / ``"perennial-trainer"``) pointed at
``127.0.0.1:<port>``, a fast scrape interval and absolute rule file paths::

    from tests.deploy.prometheus_local import write_local_config

    config = write_local_config(tmp_path / "prometheus.yml", service_port=3917, trainer_ports=[9464])
    subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path/'data'}",
                      "--web.listen-address=127.0.0.1:9099"])

>>> c = local_config(3917, [9464, 9465], scrape_interval="1s")
>>> [(j["job_name"], j["static_configs"][0]["targets"]) for j in c["scrape_configs"]]
[('perennial-service', ['127.0.0.1:3917']), ('perennial-trainer', ['127.0.0.1:9464', '127.0.0.1:9465'])]
>>> c["global"]["scrape_interval"], c["global"]["evaluation_interval"]
('1s', '1s')
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SERVICE_JOB, TRAINER_JOB = "perennial-service", "perennial-trainer"


def local_config(service_port: int | None, trainer_ports: Sequence[int], scrape_interval: str = "1s",
                 with_rules: bool = True, host: str = "127.0.0.1") -> dict:
    """The production config with local targets (a job with no port is dropped)."""
    config = copy.deepcopy(yaml.safe_load(PRODUCTION_CONFIG.read_text(encoding="utf-8")))
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["global"]["scrape_timeout"] = scrape_interval
    base = PRODUCTION_CONFIG.parent
    config["rule_files"] = [str(base / r) for r in config.get("rule_files", [])] if with_rules else []
    targets = {
        SERVICE_JOB: [f"{host}:{service_port}"] if service_port else [],
        TRAINER_JOB: [f"{host}:{p}" for p in trainer_ports],
    }
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in targets:
            raise ValueError(f"unexpected job {job['job_name']!r} in {PRODUCTION_CONFIG}")
        if not targets[job["job_name"]]:
            continue
        job = {k: v for k, v in job.items() if not k.endswith("_sd_configs") and k != "static_configs"}
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def write_local_config(path: Path, service_port: int | None, trainer_ports: Sequence[int], **kwargs) -> Path:
    """Write `local_config` to ``path`` (returned)."""
    path.write_text(yaml.safe_dump(local_config(service_port, trainer_ports, **kwargs), sort_keys=False),
                    encoding="utf-8")
    return path
