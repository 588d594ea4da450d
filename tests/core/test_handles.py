"""Handles as people paste them (CONTRACT 1): `name`, `@name`, a profile URL, stray spaces."""

from __future__ import annotations

import pytest

from connector.core.errors import InputError
from connector.core.handles import ACCEPTED_FORMS, normalize_handle


@pytest.mark.parametrize(
    "pasted",
    [
        "stoolpresidente",
        "@stoolpresidente",
        "  @stoolpresidente  ",
        "@ stoolpresidente",
        "StoolPresidente",
        "https://www.tiktok.com/@stoolpresidente",
        "https://www.tiktok.com/@stoolpresidente?lang=en",
        "https://www.tiktok.com/@StoolPresidente/",
        "https://www.tiktok.com/@stoolpresidente/video/7301234567890123456",
        "http://tiktok.com/@stoolpresidente",
        "https://m.tiktok.com/@stoolpresidente",
        "www.tiktok.com/@stoolpresidente",
        "tiktok.com/@stoolpresidente#top",
        " HTTPS://WWW.TIKTOK.COM/@stoolpresidente ",
    ],
)
def test_every_accepted_form_gives_the_bare_lowercase_handle(pasted: str) -> None:
    assert normalize_handle(pasted) == "stoolpresidente"


@pytest.mark.parametrize("handle", ["a", "user_1", "first.last", "x" * 24, "tiktok.com", "_._"])
def test_letters_digits_underscores_and_dots_up_to_24_characters_are_handles(handle: str) -> None:
    assert normalize_handle(handle) == handle


@pytest.mark.parametrize(
    ("pasted", "why"),
    [
        ("bad handle!", "is not a TikTok handle"),
        ("x" * 25, "at most 24 characters"),
        ("@", "is not a TikTok handle"),
        ("@@name", "is not a TikTok handle"),
        ("na-me", "is not a TikTok handle"),
        ("nämé", "is not a TikTok handle"),
        ("https://www.tiktok.com/", "URL without an @handle"),
        ("https://vm.tiktok.com/ZMabcdef/", "URL without an @handle"),
        ("https://www.tiktok.com/@", "URL without an @handle"),
        ("https://example.com/@name", "not a TikTok profile URL"),
        ("https://tiktok.com.example.net/@name", "not a TikTok profile URL"),
        ("https://nottiktok.com/@name", "not a TikTok profile URL"),
    ],
)
def test_anything_else_is_refused_with_the_accepted_forms(pasted: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize_handle(pasted)
    assert caught.value.field == "handle"
    assert why in caught.value.message
    assert ACCEPTED_FORMS in caught.value.message
    assert repr(pasted) in caught.value.message  # the user sees what they sent


@pytest.mark.parametrize("missing", [None, "", "   ", 42, ["name"]])
def test_a_missing_handle_is_required_and_named(missing: object) -> None:
    with pytest.raises(InputError) as caught:
        normalize_handle(missing)
    assert caught.value.field == "handle"
    assert caught.value.message.startswith("handle is required")
    assert ACCEPTED_FORMS in caught.value.message


def test_the_error_names_the_field_it_was_given() -> None:
    with pytest.raises(InputError) as caught:
        normalize_handle("bad handle!", field="account")
    assert caught.value.field == "account"
    assert caught.value.message.startswith("account:")
    assert caught.value.sent_nothing


# ------------------------------------------------ pasted handles and TikTok's rule (issue 21)

#: What pasting leaves around a handle: line ends of every system, Unicode spaces, zero-width
#: characters, a byte order mark, direction marks.
RESIDUE = ["\n", "\r\n", "\r", "\t", "\xa0", "\u202f", "\u3000", "\u2028", "\u200b", "\u200d",
           "\u2060", "\ufeff", "\u200e", "\u200f"]


@pytest.mark.parametrize("residue", RESIDUE, ids=[f"U+{ord(r[-1]):04X}" for r in RESIDUE])
def test_what_pasting_leaves_around_a_handle_is_accepted(residue: str) -> None:
    for pasted in (f"stoolpresidente{residue}", f"{residue}@stoolpresidente{residue}",
                   f"{residue}https://www.tiktok.com/@stoolpresidente{residue}"):
        assert normalize_handle(pasted) == "stoolpresidente"


@pytest.mark.parametrize("pasted", ["na\u200bme", "stool\xa0presidente", "na\nme", "na\rme"])
def test_an_invisible_character_inside_is_refused_and_shown_visibly(pasted: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize_handle(pasted)
    shown = repr(pasted)
    assert "\\" in shown and shown in caught.value.message  # e.g. 'na\u200bme', escaped
    assert pasted not in caught.value.message
    assert "inside" in caught.value.message


@pytest.mark.parametrize("name", [".", "..", "...", "name.", "@name.", "x" * 23 + "."])
def test_a_name_ending_with_a_period_is_not_a_tiktok_handle(name: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize_handle(name)
    assert "does not end with a period" in caught.value.message


def test_a_name_tiktok_refuses_costs_no_request(standin, creds) -> None:
    from tests.support import run_main

    run = run_main("--base-url", standin.url, "list", "name.", key=creds["apiKey"])
    assert run.code == 2 and run.stdout == ""
    assert "'name.' is not a TikTok handle (a handle does not end with a period)" in run.stderr
    assert standin.count_requests() == 0


def test_a_pasted_handle_with_a_line_end_works_on_the_command_line(standin, creds) -> None:
    from tests.support import run_main

    standin.add_account("alice", 2)
    run = run_main("--base-url", standin.url, "list", "alice\r\n", key=creds["apiKey"])
    assert run.code == 0, run.stderr
    assert len(run.lines) == 2


def test_the_refusal_on_the_command_line_shows_the_invisible_character() -> None:
    from tests.support import run_cli

    run = run_cli("list", "na\u200bme")
    assert run.code == 2
    assert "'na\\u200bme'" in run.stderr
