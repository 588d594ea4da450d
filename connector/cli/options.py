"""What every command's options share: the options that are operation inputs, drawn from the
manifests; the global options, taken anywhere on the line; and the help layout.

An input's bounds, choices, default and help come from its manifest, the one place forms,
`invoke` and `serve` read them too, so the command line can neither refuse what a manifest
allows nor take what it refuses. Reading the JSON manifests is cheap: `--help` stays quick.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..core import manifests
from .common import cursor, whole_number

#: The global options: (flags, argparse keywords). Each command takes them too, after its
#: name (`list busy_demo --sandbox`), under `sub_` names merged into the global ones.
GLOBALS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--sandbox",), dict(action="store_true",
                          help="run against a built-in local stand-in (demo accounts, no API "
                               "key; state apart from the real one)")),
    (("--base-url",), dict(metavar="URL", help="API base URL (default: $DUMPLINGAI_BASE_URL "
                                               "or https://app.dumplingai.com)")),
    (("-v", "--verbose"), dict(action="count", default=0,
                               help="more detail on stderr (-vv: HTTP too)")),
]


def add_globals(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """The global options on the top-level parser, or (`sub`) on a command's, where an option
    that is not given leaves the global value alone."""
    group = parser.add_argument_group("global options")
    for flags, kwargs in GLOBALS:
        if sub:
            kwargs = {**kwargs, "dest": "sub_" + flags[-1].lstrip("-").replace("-", "_"),
                      "default": argparse.SUPPRESS}
        group.add_argument(*flags, **kwargs)


def merge_globals(args: argparse.Namespace) -> None:
    """A global option given after the command counts as given before it: -v adds up, the
    last --base-url wins (as for any option given twice), --sandbox either way."""
    args.verbose += getattr(args, "sub_verbose", 0)
    args.sandbox = args.sandbox or getattr(args, "sub_sandbox", False)
    args.base_url = getattr(args, "sub_base_url", args.base_url)


def examples(*lines: str) -> str:
    """An epilog of example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def example(key: str, name: str, index: int = 0) -> Any:
    """An example value of an input, from its manifest."""
    return _props(key)[name]["examples"][index]


def input_default(key: str, name: str) -> Any:
    """An input's default, from its manifest (None when it has none)."""
    return _props(key)[name].get("default")


def input_help(key: str, name: str) -> str:
    """An input's description, as a command line reads it: without the sentences that speak
    of an empty form field."""
    text = _props(key)[name].get("description", "")
    sentences = re.split(r"(?<=\.)\s+", text)
    return " ".join(s for s in sentences if not s.startswith("Leave empty"))


def input_option(parser: argparse.ArgumentParser, name: str, operations: dict[str, str], *,
                 metavar: str | None = None, also: str = "") -> None:
    """Add the option for the input `name` (maxPages: --max-pages) of `operations`: {operation
    key: how the command line chooses that operation, e.g. "with --unfollows" ('' for the
    command's own)}, its help saying which operation a bound or default is for when they
    differ. Given or not, the default stays the manifest's to apply: an option left out sends
    nothing."""
    found = {key: _props(key)[name] for key in operations if name in _props(key)}
    if not found:
        raise ValueError(f"no operation of {list(operations)} has the input {name!r}")
    first = next(iter(found))
    prop = found[first]
    kwargs: dict[str, Any] = {}
    notes = []
    choices = [c["const"] for c in prop.get("oneOf", []) if "const" in c] or prop.get("enum")
    if choices:
        kwargs["choices"] = choices
        # argparse's own form, given for shtab: its zsh script shows a metavar, or the dest.
        metavar = metavar or "{" + ",".join(choices) + "}"
        notes.append("; ".join(f"{c['const']}: {c['title']}" for c in prop.get("oneOf", [])))
    elif "integer" in _types(prop):
        low = _extreme(found, "minimum", min)
        high = _extreme(found, "maximum", max)
        kwargs["type"] = whole_number(low if low is not None else 0, high)
        metavar = metavar or "N"
        notes.append(_bounds(low, high))
    elif "number" in _types(prop):
        kwargs["type"] = cursor
        metavar = metavar or "CURSOR"
    notes.append(_defaults(found, operations))
    missing = [how for key, how in operations.items() if key not in found]
    if "" in missing:  # not an input of the command's own operation
        notes.append(" or ".join(operations[key] for key in found) + " only")
    elif missing:
        notes.append("not " + " or ".join(missing))
    text = input_help(first, name)
    if also:
        text = f"{text} {also}".strip()
    flag = "--" + re.sub("([A-Z])", r"-\1", name).lower()
    parser.add_argument(flag, metavar=metavar, **kwargs,
                        help=f"{text} ({'; '.join(n for n in notes if n)})".replace("%", "%%"))


def _props(key: str) -> dict[str, Any]:
    return manifests.load(key)["input"]["properties"]


def _types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type")
    return kind if isinstance(kind, list) else [kind]


def _extreme(found: dict[str, dict[str, Any]], keyword: str, pick: Any) -> int | None:
    """The loosest bound over the operations (each operation's own is checked again, by
    name, when its inputs are prepared); None when one of them has none."""
    values = [prop.get(keyword) for prop in found.values()]
    return None if None in values else pick(values)


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    return f"at most {high}" if high is not None else ""


def _defaults(found: dict[str, dict[str, Any]], operations: dict[str, str]) -> str:
    """`default: 10, 50 with --unfollows`; for an input without a default, the manifest's own
    words for leaving it empty (`default: no limit`)."""
    shown = []
    for key, prop in found.items():
        empty = re.search(r"Leave empty (?:for|to) ([^.;]+)", prop.get("description", ""))
        if "default" in prop:
            shown.append((str(prop["default"]), operations[key]))
        elif empty:
            shown.append((empty.group(1), operations[key]))
    if not shown:
        return ""
    if len({text for text, _ in shown}) == 1 and len(shown) == len(found):
        return f"default: {shown[0][0]}"
    return "default: " + ", ".join(f"{text} {how}".strip() for text, how in shown)
