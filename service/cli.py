"""The ``perennial`` console script: one door to every process.

Each subcommand lives in its own module under ``service/commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code). Adding a command is adding a module; this file does not
change.

Manners shared by every command (`service.cli_support`): global flags before or after the
subcommand, ``--stream`` to name a stream, and every user error as one line on stderr with
exit code 2 (``--debug`` adds the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback

from service import commands
from service.cli_support import (
    EXIT_USAGE,
    Parser,
    add_global_flags,
    spread_global_flags,
    user_message,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="perennial",
        description="A model-serving microservice that keeps learning.",
    )
    add_global_flags(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    spread_global_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - sorted below: user errors get one line, bugs a traceback
        message = user_message(exc)
        if message is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"perennial {args.command}: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
