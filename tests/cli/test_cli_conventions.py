"""Command-line conventions (issue 21): --version, global options anywhere on the line, help for
every option with an example or two per command, and plurals that agree with their counts."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

import connector
from connector import cli
from connector.core import manifests
from tests.support import run_cli, run_main


def test_version_prints_the_products_version() -> None:
    run = run_cli("--version", key=None)
    assert run.code == 0
    expected = manifests.load("connector")["version"]
    assert run.stdout == f"tiktok-following {expected}\n"
    # One version everywhere: the manifest (serve's /healthz), the package, its metadata.
    assert expected == connector.__version__ == version("tiktok-following-connector")


@pytest.mark.parametrize("argv", [
    ["--sandbox", "list", "busy_demo", "--max-items", "3"],
    ["list", "--sandbox", "busy_demo", "--max-items", "3"],
    ["list", "busy_demo", "--max-items", "3", "--sandbox"],
], ids=["before", "after the command", "at the end"])
def test_sandbox_goes_anywhere_on_the_line(argv: list[str]) -> None:
    run = run_main(*argv, key=None)
    assert run.code == 0, run.stderr
    assert len(run.lines) == 3
    assert run.stderr.startswith("@busy_demo: 3 accounts, 1 page, 10 credits")


def test_base_url_goes_after_the_command_too(standin, creds) -> None:
    standin.add_account("alice", 2)
    run = run_main("list", "alice", "--base-url", standin.url, key=creds["apiKey"])
    assert run.code == 0, run.stderr
    assert [i["uniqueId"] for i in run.lines] == ["user2", "user1"]


def test_the_last_base_url_given_wins_wherever_it_is(standin, creds) -> None:
    standin.add_account("alice", 1)
    run = run_main("--base-url", "https://unused.example", "list", "alice", "--base-url",
                   standin.url, key=creds["apiKey"])
    assert run.code == 0, run.stderr
    assert standin.count_requests() == 1


def test_verbose_counts_wherever_it_is_given() -> None:
    def parsed(*argv: str) -> argparse.Namespace:
        args = cli._parser(argv[0] if argv[0] != "-v" else argv[1]).parse_args(list(argv))
        cli.merge_globals(args)
        return args

    assert parsed("list", "x").verbose == 0
    assert parsed("list", "x", "-v").verbose == 1
    assert parsed("-v", "list", "x", "-v").verbose == 2
    assert parsed("-v", "list", "x", "-vv").verbose == 3
    assert parsed("list", "x", "--sandbox").sandbox is True
    assert parsed("list", "x").sandbox is False


def test_verbose_after_the_command_logs_as_before_it() -> None:
    before = run_main("-vv", "--sandbox", "list", "busy_demo", "--max-items", "1", key=None)
    after = run_main("--sandbox", "list", "busy_demo", "--max-items", "1", "-v", "-v",
                     key=None)
    for run in (before, after):
        assert run.code == 0, run.stderr
        assert "DEBUG urllib3" in run.stderr  # -vv: HTTP too


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser (`auth test` for `auth`), from the full command line."""
    out = []
    top = cli._parser()
    (sub,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in sub.choices.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            out += [(f"{name} {n}", p) for n, p in nested[0].choices.items()]
        else:
            out.append((name, parser))
    return [("(top)", top), *out]


def test_every_option_and_argument_has_help() -> None:
    # `export` is left alone: it is being removed (the n8n package replaces `export zapier`).
    missing = [(name, action.dest) for name, parser in parsers() if name != "export"
               for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction)
               and not (action.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("command", [name for name, _ in parsers()
                                     if name not in ("(top)", "export")])
def test_every_command_has_an_example_that_parses(command: str) -> None:
    words = command.split()
    run = run_main(*words, "--help")
    assert run.code == 0
    _, _, examples = run.stdout.partition("\nexamples:\n")
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines, run.stdout
    for line in lines:
        argv = line.split("|")[-1].split(">")[0].split()
        assert argv[:1 + len(words)] == ["tiktok-following", *words], line
        args = cli._parser(words[0]).parse_args(argv[1:])  # SystemExit if it does not parse
        assert args.command == words[0]


def test_global_options_are_in_every_commands_help() -> None:
    for name, parser in parsers():
        if name in ("(top)",):
            continue
        text = parser.format_help()
        assert "global options:" in text and "--sandbox" in text, name


def test_one_account_and_one_request_are_singular(standin, creds, tmp_path) -> None:
    standin.add_account("alice", 1)
    run = run_main("--base-url", standin.url, "list", "alice", key=creds["apiKey"])
    assert run.stderr.startswith("@alice: 1 account, 1 page, 10 credits")
    db = str(tmp_path / "s.db")
    run_main("--base-url", standin.url, "poll", "alice", "--state-db", db, key=creds["apiKey"])
    standin.follow_many("alice", 1)
    run = run_main("--base-url", standin.url, "poll", "alice", "--state-db", db,
                   key=creds["apiKey"])
    assert run.code == 0, run.stderr
    assert run.stderr.startswith("@alice: 1 new follow, 1 request, 10 credits")


def test_completion_prints_a_script_naming_the_commands_options_and_choices() -> None:
    for shell in ("bash", "zsh"):
        run = run_main("completion", shell)
        assert run.code == 0, run.stderr
        for word in ("tiktok-following", "list", "poll", "--max-pages", "--first-run",
                     "skipExisting", "emitRecent", "--sandbox"):
            assert word in run.stdout, (shell, word)


def test_help_and_start_up_never_import_the_completion_library() -> None:
    from tests.support import run_python

    run = run_python("import sys, connector; from connector import cli; cli._parser(); "
                     "print('shtab' in sys.modules)")
    assert run.code == 0, run.stderr
    assert run.stdout == "False\n"


def test_completion_without_shtab_says_what_to_install() -> None:
    from tests.support import run_python

    run = run_python("import sys; sys.modules['shtab'] = None; from connector.cli import main; "
                     "sys.exit(main(['completion', 'bash']))")
    assert run.code == 2 and run.stdout == ""
    assert run.stderr == ("tiktok-following: shell completion needs shtab: pip install shtab "
                          "(or the completion extra)\n")
