"""Schema versions, the same in every backend: the version a database's meta table names is
checked (junk, or newer than this release knows: refused by name, nothing changed), then each
migration after it runs in turn, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..core.errors import StateError
from .sql import Session


def schema_version(found: object, location: str, newest: int) -> int:
    """The version stored in meta (`found`; None: no schema yet, 0)."""
    if found is None:
        return 0
    other = "pass another --state-db PATH or URL"
    if not (isinstance(found, str) and found.isdigit() and len(found) < 6):
        raise StateError(f"the state database {location} has a damaged schema version "
                         f"{str(found)[:20]!r}; restore it, or {other}")
    if int(found) > newest:
        raise StateError(f"the state database {location} was written by a newer version of "
                         f"tiktok-following-connector (schema {found}; this one knows up to "
                         f"{newest}); upgrade it, or {other}")
    return int(found)


def migrate(s: Session, version: int, steps: Mapping[int, Sequence[str]]) -> None:
    """Run the migrations after `version` (`steps`: each version's statements), recording
    each version reached in meta."""
    for target in range(version + 1, max(steps) + 1):
        for statement in steps[target]:
            s.conn.execute(statement)  # DDL, no parameters: as written
        s.run(f"INSERT INTO {s.dialect.prefix}meta VALUES ('schema', :version) ON CONFLICT "
              "(name) DO UPDATE SET value = excluded.value", version=str(target))
