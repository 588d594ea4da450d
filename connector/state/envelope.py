"""The envelope every trigger state shares: how it is kept, and the checks that refuse what
this connector never wrote.

A state has two forms. Runner JSON (`to_json`, `from_json`): one object, versioned (`v`),
with its large field (the follow trigger's memory, the unfollow trigger's roster) as a list of
text parts. In a database (`to_stored`, `from_stored`): a small JSON row, and that field's parts
as bytes, newest first, each kept in a row of its own so that a save writes only the parts
that changed. Anything damaged, foreign or from a newer version is a StateError before any
request, never repaired silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from ..core import cursors
from ..core.errors import StateError
from ..core.handles import normalize_handle
from ..core.redact import shown
from .prints import PRINTS

#: What every damage message ends with: how to get going again.
RESTORE = "restore it from the runner's history, or pass null state to start a new baseline"


_S = TypeVar("_S", bound="SplitState")


class SplitState:
    """A trigger state in either form (see the module); the split between row and parts is
    decided here, once. A state writes `_fields(parts)` (its runner JSON with `parts` as its
    PARTS field, in the order it always had), `_parts(text)` (its parts as text, or as
    bytes), and `_load(data, parts)` (check and decode; `parts` None: they are `data`'s
    PARTS field, as text)."""

    #: The field of the runner JSON that a database keeps as parts.
    PARTS: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The runner-owned JSON: what `invoke`, `serve` and `connector.run` hand back."""
        return self._fields(self._parts(True))  # type: ignore[attr-defined,no-any-return]

    def to_stored(self) -> tuple[dict[str, Any], list[bytes]]:
        """(the small JSON row, the parts as bytes, newest first): what a database keeps."""
        row = self._fields(None)  # type: ignore[attr-defined]
        del row[self.PARTS]
        return row, self._parts(False)  # type: ignore[attr-defined]

    @classmethod
    def of(cls: type[_S], state: Any) -> _S | None:
        """The state a trigger is given: None (a first run), this state as an object (the
        embedded store loads one), or its runner JSON, parsed."""
        if state is None or isinstance(state, cls):
            return state
        return cls.from_json(state)

    @classmethod
    def from_json(cls: type[_S], data: Any) -> _S:
        """Parse runner JSON (an object, or its text); a StateError for anything unexpected."""
        return cls._load(parse_object(data), None)  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_stored(cls: type[_S], row: Any, parts: Sequence[bytes | str]) -> _S:
        """A state as a database keeps it: its row and its parts as stored, newest first: bytes,
        or text as earlier releases kept some (a part's runner-JSON text). A row that holds its
        parts field itself is a state kept whole (earlier releases, or any unsplit state)."""
        data = parse_object(row)
        if cls.PARTS in data:
            if parts:
                raise damaged(f"a stored row holds '{cls.PARTS}' and has parts besides")
            return cls._load(data, None)  # type: ignore[attr-defined,no-any-return]
        return cls._load(data, list(parts))  # type: ignore[attr-defined,no-any-return]


def damaged(what: str) -> StateError:
    """The error for damaged state: `what` is wrong with it."""
    return StateError(f"state is damaged: {what}; {RESTORE}")


def parse_object(data: Any) -> dict[str, Any]:
    """Stored state as a dict (parsed first when it comes as JSON text), or a StateError."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StateError(f"state is not valid JSON; {RESTORE}") from exc
    if not isinstance(data, dict):
        raise StateError("state must be a JSON object written by this connector "
                         "(or null for a first run)")
    return data


def check_envelope(data: dict[str, Any], newest: int, fields: dict[int, set[str]]
                   ) -> tuple[int, str, Any, Any]:
    """(version, handle, watermark, base) of a state whose versions up to `newest` (what this
    connector writes) have these `fields`, each checked; the handle normalised, as the
    connector writes it."""
    version = data.get("v")
    if type(version) is not int or version < 1:
        raise StateError(f"state version {shown(version, 40)} is not valid (a whole number "
                         f"from 1); {RESTORE}")
    if version > newest:
        raise StateError(f"state is version {shown(version, 40)}, newer than this connector "
                         f"understands ({newest}); upgrade tiktok-following-connector")
    check_fields(data, fields[version], "the state")
    handle = data.get("handle")
    try:
        valid = isinstance(handle, str) and normalize_handle(handle) == handle
    except Exception:
        valid = False
    if not valid:
        raise damaged(f"'handle' {shown(handle, 40)} is not a TikTok handle")
    return (version, handle, check_cursor(data.get("watermark"), "watermark"),
            check_cursor(data.get("base"), "base"))


def check_fields(data: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse a field this connector does not write in `where`: a mistyped or foreign state
    must not load with a part of it silently ignored."""
    unknown = sorted(str(k) for k in set(data) - set(allowed))
    if unknown:
        raise damaged(f"{where} has a field {shown(unknown[0], 40)} this connector does not write")


def check_cursor(value: Any, name: str) -> Any:
    """A cursor kept in state (None: none): one the upstream could have handed out."""
    if not cursors.is_cursor(value) or (value is not None and cursors.is_dead(value)):
        raise damaged(f"{name} {shown(value, 40)} is not a follow-time cursor")
    return value


def check_account(value: Any, name: str) -> int | None:
    """An account kept in state as its fingerprint (state/prints.py), or None: none."""
    if value is not None and (type(value) is not int or not 0 <= value < PRINTS):
        raise damaged(f"{name} {shown(value, 40)} is not an account's fingerprint")
    return value


def check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise damaged(f"{name} must be true or false")
    return value
