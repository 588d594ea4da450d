"""Base85 at C speed (core/b85.py): the standard library's output, and what it refuses."""

from __future__ import annotations

import base64
import random

import pytest

from connector.core import b85


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 63, 64, 65, 255, 4096, 20_001])
def test_base85_is_the_standard_librarys(size):
    data = random.Random(size).randbytes(size)
    text = base64.b85encode(data).decode()
    assert b85.encode(data) == text and b85.decode(text) == data


@pytest.mark.parametrize("bad", ["ab\"cd", "~~~~~", "|NsC1", "~", "|~~~~", "|Ns"])
def test_base85_refuses_what_the_standard_library_refuses(bad):
    with pytest.raises(ValueError):
        base64.b85decode(bad)
    with pytest.raises(ValueError):
        b85.decode(bad)
