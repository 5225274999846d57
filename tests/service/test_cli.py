"""The CLI's manners, table-driven: every user error is ONE line on stderr, exit code 2, no
traceback (``--debug`` adds it); global flags go before or after the subcommand; a stream is
named ``--stream`` everywhere (the old positional form still works, with a notice).

Through `service.cli.main`, the console script's own entry point, in process (each case
would pay a second of interpreter start as a subprocess); one case runs the real script.
"""

from __future__ import annotations

import pytest

from service.cli import main
from streaming.broker import free_port
from tests.helpers import run_perennial


def perennial(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse exits for a bad command line
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def registry(tmp_path, make_registry):  # noqa: ANN001, ANN201
    root = tmp_path / "registry"
    make_registry(root, "agr")
    return str(root)


CLOSED = f"127.0.0.1:{free_port()}"  # nothing listens there

# (case id, argv with {registry} and {tmp} filled in, environment, what the one line must say)
USER_ERRORS = [
    ("unknown model", ["models", "promote", "nosuch", "1", "--registry", "{registry}"], {},
     "no model 'nosuch' in registry"),
    ("unknown model in list", ["models", "list", "nosuch", "--registry", "{registry}"], {}, "it has agr"),
    ("missing registry", ["models", "list", "--registry", "{tmp}/nowhere"], {}, "no registry at"),
    ("train: model not in the registry", ["train", "--model", "nosuch", "--registry", "{registry}"], {},
     "create it with `perennial bootstrap"),
    ("train: missing registry", ["train", "--model", "agr", "--registry", "{tmp}/nowhere"], {}, "no registry at"),
    ("train: unreachable broker", ["train", "--model", "agr", "--registry", "{registry}",
                                   "--bootstrap-servers", CLOSED, "--checkpoint-dir", "{tmp}/ck"],
     {"PERENNIAL_CONNECT_TIMEOUT_S": "0.3"}, f"cannot reach Kafka at {CLOSED}"),
    ("produce: unreachable broker", ["produce", "--stream", "agrawal", "--model", "agr", "--events", "3",
                                     "--bootstrap-servers", CLOSED],
     {"PERENNIAL_CONNECT_TIMEOUT_S": "0.3"}, "start one with `perennial broker`"),
    ("produce: model not in the registry", ["produce", "--stream", "agrawal", "--model", "nosuch",
                                            "--registry", "{registry}"], {}, "no model 'nosuch'"),
    ("bad flag value", ["bootstrap", "--stream", "agrawal", "--model", "m", "--events", "many"], {},
     "argument --events: invalid int value: 'many'"),
    ("bad flag value after the subcommand's own", ["models", "list", "--log-level", "LOUD"], {},
     "invalid log level 'LOUD'"),
    ("setting out of range", ["replay", "--stream", "agrawal", "--window", "3"], {},
     "--window / PERENNIAL_WINDOW: Input should be greater than or equal to 10"),
    ("bad environment value", ["replay", "--stream", "agrawal"], {"PERENNIAL_WINDOW": "wide"},
     "PERENNIAL_WINDOW"),
    ("unknown stream", ["replay", "--stream", "nope"], {}, "unknown stream 'nope'; use one of"),
    ("stream missing", ["bootstrap", "--model", "m"], {}, "--stream is required"),
    ("two streams", ["replay", "agrawal", "--stream", "sea-drift"], {}, "two streams given"),
    ("unknown flag", ["models", "list", "--registyr", "x"], {}, "unrecognized arguments: --registyr"),
]


@pytest.mark.parametrize(("argv", "env", "says"), [c[1:] for c in USER_ERRORS], ids=[c[0] for c in USER_ERRORS])
def test_a_user_error_is_one_line_exit_2_no_traceback(argv, env, says, registry, tmp_path, capsys,  # noqa: ANN001
                                                      monkeypatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PERENNIAL_REGISTRY_KEY", "cli-test")
    argv = [a.format(registry=registry, tmp=tmp_path) for a in argv]
    code, out, err = perennial(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("notice:")]
    assert code == 2, (out, err)
    assert len(lines) == 1, err
    assert says in lines[0], lines[0]
    assert lines[0].startswith("perennial"), "the line names the command it comes from"
    assert "Traceback" not in err + out


def test_debug_adds_the_traceback(registry, capsys) -> None:  # noqa: ANN001
    code, _, err = perennial(["train", "--model", "nosuch", "--registry", registry, "--debug"], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("perennial train: no model 'nosuch'")


@pytest.mark.parametrize("argv", [
    ["--log-level", "WARNING", "models", "--registry", "{registry}", "list"],
    ["models", "list", "--registry", "{registry}", "--log-level", "WARNING"],
    ["models", "--registry", "{registry}", "list", "agr", "--json"],
], ids=["all before", "all after", "mixed"])
def test_global_flags_before_or_after_the_subcommand(argv, registry, capsys) -> None:  # noqa: ANN001
    code, out, err = perennial([a.format(registry=registry) for a in argv], capsys)
    assert code == 0, err
    assert "agr" in out and "champion" in out


def test_the_positional_stream_still_works_with_a_deprecation_notice(capsys) -> None:  # noqa: ANN001
    code, _, err = perennial(["replay", "nope"], capsys)
    assert code == 2
    assert "notice: perennial replay: a positional STREAM is deprecated; write `perennial replay --stream nope`" in err
    assert "unknown stream 'nope'" in err


def test_the_console_script_itself_prints_one_line(tmp_path) -> None:  # noqa: ANN001
    proc = run_perennial("models", "list", "--registry", str(tmp_path / "nowhere"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no registry at" in proc.stderr
    assert proc.stdout == ""


def test_the_serving_worker_collects_cycles_less_often_than_pythons_default():
    import gc

    from service.runtime import tune_gc
    from service.settings import ServiceSettings

    before = gc.get_threshold()
    try:
        tune_gc(ServiceSettings().gc_threshold)
        assert gc.get_threshold() == (10_000, *before[1:])
        tune_gc(0)  # 0 keeps what is set
        assert gc.get_threshold()[0] == 10_000
    finally:
        gc.set_threshold(*before)
