"""What every ``perennial`` subcommand shares: its error style, its global flags, its stream flag.

Why one module: a user learns the CLI's manners once. Every mistake a user can fix (an
unknown model, a missing registry, an unreachable broker, a bad flag value) ends as ONE
line on stderr that says what to do, with exit code 2 and no traceback; ``--debug`` adds
the traceback for a bug report. Global flags (``--log-level``, ``--debug``) are accepted
before or after the subcommand, and a stream is always named ``--stream NAME``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from training.registry import Registry

EXIT_USAGE = 2  # argparse's own exit code for a bad command line; ours for every user error

BUILT_IN_STREAMS = "agrawal-drift, agrawal, sea-drift, digits-rotate, phishing, shuttle"


class UsageError(Exception):
    """A mistake the user can fix. The message says what was wrong and what to do."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (argparse prints usage, then the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def add_global_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level`` and ``--debug``. On subcommands they default to SUPPRESS, so a value
    given before the subcommand is not overwritten by the subcommand's default."""
    suppress = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--log-level", type=_log_level, **({"default": "INFO"} | suppress),
                        help="logging level: DEBUG, INFO (default), WARNING, ERROR")
    parser.add_argument("--debug", action="store_true", **({"default": False} | suppress),
                        help="on an error, show its traceback too")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(f"invalid log level {value!r}: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def spread_global_flags(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand (and sub-subcommand) the global flags."""
    for action in parser._actions:  # argparse has no public walk over its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                add_global_flags(sub, top=False)
                spread_global_flags(sub)


def add_stream_flag(parser: argparse.ArgumentParser, *, default: str | None = None,
                    positional_deprecated: bool = False) -> None:
    """``--stream NAME``: the one way every command names a stream. Commands that used to take
    it as a positional argument still accept that, with a deprecation notice."""
    where = f" (default {default})" if default else ""
    parser.add_argument("--stream", default=None,
                        help=f"built-in stream ({BUILT_IN_STREAMS}), a CSV path, or a JSON Lines "
                        f"path (.jsonl: text, tensors){where}")
    if positional_deprecated:
        parser.add_argument("stream_positional", nargs="?", metavar="STREAM", help=argparse.SUPPRESS)
    parser.set_defaults(stream_default=default)


def resolve_stream(args: argparse.Namespace, command: str) -> str:
    """The stream named by ``--stream`` (or the deprecated positional form), or its default."""
    positional = getattr(args, "stream_positional", None)
    if positional is not None:
        if args.stream is not None and args.stream != positional:
            raise UsageError(f"two streams given ({positional!r} and --stream {args.stream!r}); "
                             "name one, with --stream")
        notice(f"perennial {command}: a positional STREAM is deprecated; write "
               f"`perennial {command} --stream {positional}`")
        return positional
    stream = args.stream or args.stream_default
    if stream is None:
        raise UsageError(f"--stream is required: a built-in stream ({BUILT_IN_STREAMS}), a CSV or a .jsonl path")
    return stream


def notice(message: str) -> None:
    """Tell the user about something the command decided for them (a default it adapted,
    a deprecated form it accepted): on stderr, so it never mixes with a command's output."""
    print(f"notice: {message}", file=sys.stderr, flush=True)


def user_message(exc: BaseException) -> str | None:
    """One line for an error the user can act on; None for a bug (which keeps its traceback)."""
    from pydantic import ValidationError

    from streaming.broker import BrokerError
    from training.registry import RegistryError

    if isinstance(exc, ValidationError):
        return "invalid setting: " + "; ".join(_validation_item(e) for e in exc.errors())
    if isinstance(exc, UsageError | RegistryError | BrokerError | FileNotFoundError | NotADirectoryError
                  | PermissionError | ValueError):
        return _one_line(str(exc) or type(exc).__name__)
    try:
        from kafka.errors import KafkaError
    except ImportError:  # pragma: no cover - kafka-python is a dependency
        return None
    if isinstance(exc, KafkaError):
        return _one_line(f"Kafka: {exc}; check --bootstrap-servers (or PERENNIAL_BOOTSTRAP_SERVERS)")
    return None


def _validation_item(error: dict) -> str:
    field = ".".join(str(p) for p in error.get("loc", ())) or "value"
    flag = "--" + field.replace("_", "-")
    got = f" (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else ""
    return f"{flag} / PERENNIAL_{field.upper()}: {error.get('msg', 'invalid')}{got}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def open_registry(root: str | Path) -> Registry:
    """The registry at ``root``, which must exist: a typo must not look like an empty registry."""
    from training.registry import Registry

    path = Path(root)
    if not path.is_dir():
        raise UsageError(f"no registry at {path}: pass --registry DIR (or set PERENNIAL_REGISTRY_DIR), "
                         "or create one with `perennial bootstrap --stream NAME --model NAME`")
    return Registry(path)


def require_model(registry: Registry, model: str) -> None:
    """Refuse, with what to do, a model the registry does not hold."""
    known = registry.models()
    if model not in known:
        raise UsageError(f"no model {model!r} in registry {registry.root} (it has {', '.join(known) or 'none'}): "
                         f"check the model name, or create it with `perennial bootstrap --stream NAME "
                         f"--model {model} --registry {registry.root}`")


def require_champion(registry: Registry, model: str) -> None:
    """Refuse, with what to do, a model the registry does not hold or that has no champion."""
    require_model(registry, model)
    if registry.alias(model, "champion") is None:
        raise UsageError(f"model {model!r} in {registry.root} has no champion: choose one with "
                         f"`perennial models promote {model} VERSION --registry {registry.root}`")
