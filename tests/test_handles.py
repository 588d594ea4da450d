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
