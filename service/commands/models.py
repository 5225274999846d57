"""`perennial models`: list versions, promote, roll back — directly on the registry.

Every serving replica watches the registry's ``champion`` alias, so moving it here is enough:
the replicas load the new version within a second or two, without a restart. (The service's
``POST /admin/promote`` does the same through HTTP, for operators without volume access.)
"""

from __future__ import annotations

import argparse
import json
import os

REGISTRY_HELP = "model registry directory (default $PERENNIAL_REGISTRY_DIR or ./.perennial/registry)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list model versions, promote one, or roll back")
    p.add_argument("--registry", default=os.environ.get("PERENNIAL_REGISTRY_DIR", ".perennial/registry"),
                   help=REGISTRY_HELP)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    ls = sub.add_parser("list", help="versions of every model (or one), with aliases, lineage and metrics")
    ls.add_argument("model", nargs="?", help="only this model")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr = sub.add_parser("promote", help="make VERSION the champion of MODEL")
    pr.add_argument("model")
    pr.add_argument("version", type=int)
    pr.add_argument("--reason", default="promoted from the command line")
    rb = sub.add_parser("rollback", help="make the previous champion of MODEL the champion again")
    rb.add_argument("model")
    rb.add_argument("--reason", default="rolled back from the command line")
    for action in (ls, pr, rb):  # `perennial models list --registry X` as well as `models --registry X list`
        action.add_argument("--registry", default=argparse.SUPPRESS, help=REGISTRY_HELP)
    p.set_defaults(func=run, action="list", model=None, json=False)


def run(args: argparse.Namespace) -> int:
    from service.cli_support import open_registry, require_model

    registry = open_registry(args.registry)
    if args.model is not None:
        require_model(registry, args.model)
    if args.action == "promote":
        registry.promote(args.model, args.version, args.reason)
        print(f"{args.model}: champion is now version {args.version}")
    elif args.action == "rollback":
        version = registry.rollback(args.model, args.reason)
        print(f"{args.model}: rolled back; champion is now version {version}")
    else:
        _list(registry, args.model, args.json)
    return 0


def _list(registry, only: str | None, as_json: bool) -> None:
    models = [only] if only else registry.models()
    rows = []
    for model in models:
        champion, previous = registry.alias(model, "champion"), registry.alias(model, "previous")
        for v in registry.versions(model):
            alias = "champion" if v.version == champion else "previous" if v.version == previous else ""
            rows.append({"model": model, "version": v.version, "alias": alias, "learner": v.learner,
                         "origin": str(v.origin), "parent": v.parent, "created_at": v.created_at, "metrics": v.metrics, "note": v.note})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"no models in {registry.root}")
        return
    print(f"{'model':20s} {'version':>7s} {'alias':9s} {'learner':8s} {'origin':19s} {'parent':>6s} "
          f"{'created_at':25s} metrics")
    for r in rows:
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["metrics"].items())
        parent = "" if r["parent"] is None else str(r["parent"])
        print(f"{r['model']:20s} {r['version']:>7d} {r['alias']:9s} {r['learner']:8s} {r['origin']:19s} {parent:>6s} "
              f"{r['created_at']:25s} {metrics}")
