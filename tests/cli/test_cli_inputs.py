"""The manifests are the one source of the inputs (issue 19): the command line's options take
their bounds, defaults, choices and help from them."""

from __future__ import annotations

import pytest

from connector import cli
from connector.core import manifests
from tests.support import run_main

#: Each option of `list`, `poll` and `watch` that is an operation input: (command, option,
#: input, {operation: the words its help uses for that operation}).
FOLLOWS, UNFOLLOWS = "new_account_followed", "account_unfollowed"
ACTION = "get_tiktok_user_following"
POLL = {FOLLOWS: "", UNFOLLOWS: "with --unfollows"}
WATCH = {FOLLOWS: "", UNFOLLOWS: "for unfollowed events"}
OPTIONS = [
    ("list", "--max-pages", "maxPages", {ACTION: ""}),
    ("list", "--max-items", "maxItems", {ACTION: ""}),
    ("list", "--count", "count", {ACTION: ""}),
    ("poll", "--count", "count", POLL),
    ("poll", "--max-pages", "maxPages", POLL),
    ("poll", "--reconcile-every", "reconcileEvery", POLL),
    ("watch", "--count", "count", WATCH),
    ("watch", "--max-pages", "maxPages", WATCH),
    ("watch", "--reconcile-every", "reconcileEvery", WATCH),
]


def props(key: str) -> dict:
    return manifests.load(key)["input"]["properties"]


def parse(command: str, *args: str) -> object:
    """The command line parsed as `main` parses it; SystemExit for what argparse refuses."""
    needs = {"list": ["alice"], "poll": ["alice"], "watch": []}[command]
    return cli._parser(command).parse_args([command, *needs, *args])


def option_help(command: str, option: str) -> str:
    """The help of one option in `command --help`, unwrapped."""
    run = run_main(command, "--help")
    assert run.code == 0
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {option} "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("       "):  # the next option, group or section
            break
        block.append(line)
    return " ".join(" ".join(block).split())


@pytest.mark.parametrize(("command", "option", "name", "operations"), OPTIONS,
                         ids=[f"{c} {o}" for c, o, _, _ in OPTIONS])
def test_an_options_bounds_are_its_manifests(command: str, option: str, name: str,
                                              operations: dict[str, str]) -> None:
    fields = [props(key)[name] for key in operations if name in props(key)]
    low = min(f["minimum"] for f in fields)
    assert getattr(parse(command, option, str(low)), option[2:].replace("-", "_")) == low
    with pytest.raises(SystemExit):
        parse(command, option, str(low - 1))
    if all("maximum" in f for f in fields):
        high = max(f["maximum"] for f in fields)
        assert getattr(parse(command, option, str(high)), option[2:].replace("-", "_")) == high
        with pytest.raises(SystemExit):
            parse(command, option, str(high + 1))


@pytest.mark.parametrize(("command", "option", "name", "operations"), OPTIONS,
                         ids=[f"{c} {o}" for c, o, _, _ in OPTIONS])
def test_an_options_help_gives_the_manifests_bounds_and_defaults_per_operation(
        command: str, option: str, name: str, operations: dict[str, str]) -> None:
    text = option_help(command, option)
    fields = {key: props(key)[name] for key in operations if name in props(key)}
    first = next(iter(fields.values()))
    assert first["description"].split(".")[0] in text
    assert str(first["minimum"]) in text
    for key, field in fields.items():
        if "default" in field:
            said = (f"default: {field['default']}" if len(fields) == 1
                    else f"{field['default']} {operations[key]}".strip())
            assert said in text, (key, text)
    # Given or not, the default is the manifest's to apply: an option left out sends nothing.
    assert getattr(parse(command), option[2:].replace("-", "_")) is None


def test_poll_max_pages_says_its_default_for_each_trigger() -> None:
    follows, unfollows = (props(k)["maxPages"]["default"] for k in (FOLLOWS, UNFOLLOWS))
    assert (follows, unfollows) == (10, 50)  # the example; the text comes from them
    assert f"default: {follows}, {unfollows} with --unfollows" in option_help("poll",
                                                                           "--max-pages")
    assert f"default: {follows}, {unfollows} for unfollowed events" in option_help(
        "watch", "--max-pages")
    assert "with --unfollows only" in option_help("poll", "--reconcile-every")
    assert "not with --unfollows" in option_help("poll", "--first-run")


def test_list_max_pages_over_the_manifests_bound_is_refused_by_the_command_line(
        standin) -> None:
    most = props(ACTION)["maxPages"]["maximum"]
    run = run_main("--base-url", standin.url, "list", "alice", "--max-pages", str(most + 100))
    assert run.code == 2 and run.stdout == ""
    assert run.stderr == (f"tiktok-following list: argument --max-pages: expected a whole "
                          f"number from 1 to {most}, got {most + 100} (see --help)\n")
    assert standin.count_requests() == 0


@pytest.mark.parametrize("command", ["poll", "watch"])
def test_first_run_choices_are_the_manifests(command: str) -> None:
    consts = [c["const"] for c in props(FOLLOWS)["firstRun"]["oneOf"]]
    for value in consts:
        assert parse(command, "--first-run", value).first_run == value
    with pytest.raises(SystemExit):
        parse(command, "--first-run", "all")
    text = option_help(command, "--first-run")
    for choice in props(FOLLOWS)["firstRun"]["oneOf"]:
        assert f"{choice['const']}: {choice['title']}" in text


def test_an_input_without_a_default_says_what_leaving_it_out_does() -> None:
    assert "default: no limit" in option_help("list", "--max-items")
    assert "default: the API's default" in option_help("list", "--count")
    assert "default: start at the newest follow" in option_help("list", "--min-time")
