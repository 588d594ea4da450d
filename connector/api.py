"""The Python surface: `run()` one operation the way a runner would, `stream()` the action a
page at a time, and the connector object the `automation.connectors` entry point names."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .core import manifests
from .core.config import RetryPolicy, Timeouts
from .core.http import Page, PageSource, client_for
from .operations import Result, prepare, request_source
from .operations.action import Listing
from .operations.registry import ACTION, runner


def run(
    operation: str,
    inputs: Mapping[str, Any] | None,
    *,
    credentials: Mapping[str, Any] | None = None,
    platform: str | None = None,
    state: Any = None,
    mode: str = "live",
    client: PageSource | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> Result:
    """Run an operation and return its Result (`.items`, `.state`, `.meta`).

    Inputs are validated against the operation's manifest before anything is sent; errors
    raise the ConnectorError tree. Credentials default to DUMPLINGAI_API_KEY and
    DUMPLINGAI_BASE_URL. Pass `client` to share one pooled session across many calls;
    `on_page(pages, accounts)` is called after each page (progress indicators).
    """
    values, source = prepare(operation, inputs, platform=platform, mode=mode)
    op = runner(operation)
    with client_for(client, credentials=credentials, retry=retry, timeouts=timeouts) as own:
        if on_page is not None:
            own = _Progress(own, on_page)
        return op(own, values, source=source, state=state, mode=mode)


@contextmanager
def stream(
    inputs: Mapping[str, Any] | None,
    *,
    credentials: Mapping[str, Any] | None = None,
    platform: str | None = None,
    mode: str = "live",
    client: PageSource | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> Iterator[Listing]:
    """The action `get_tiktok_user_following` a page at a time: memory stays that of one page
    however many are read (what `tiktok-following list` does).

        with connector.stream({"handle": "someone", "maxPages": 100}) as listing:
            for page in listing.pages():      # or: for item in listing
                write(page)
        listing.meta                          # as Result.meta, once the pages are read

    Inputs are checked when the block is entered, before anything is sent; the options are
    those of `run`. An error part-way raises with `partial.next_cursor`, to resume from.
    """
    values, source = prepare(ACTION.key, inputs, platform=platform, mode=mode)
    with client_for(client, credentials=credentials, retry=retry, timeouts=timeouts) as own:
        if on_page is not None:
            own = _Progress(own, on_page)
        yield Listing(own, values, source=source, mode=mode)


class _Progress:
    """A PageSource that reports pages and accounts fetched so far."""

    def __init__(self, client: PageSource, on_page: Callable[[int, int], None]) -> None:
        self.client = client
        self.on_page = on_page
        self.pages = 0
        self.accounts = 0

    def fetch_page(self, handle: str, **kwargs: Any) -> Page:
        page = self.client.fetch_page(handle, **kwargs)
        self.pages += 1
        self.accounts += len(page.entries)
        self.on_page(self.pages, self.accounts)
        return page


def check_credentials(
    credentials: Mapping[str, Any] | None = None,
    *,
    handle: str | None = None,
    platform: str | None = None,
    client: PageSource | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
) -> dict[str, Any]:
    """The connection test (`tiktok-following auth test`): prove the API key and say what it
    cost. By default one request the endpoint refuses for its empty handle, costing nothing;
    with `handle`, one real one-account read (10 credits). Raises AuthenticationError for a
    refused key, like any operation."""
    from .operations.auth import check_credentials as probe

    source = request_source(platform)
    with client_for(client, credentials=credentials, retry=retry, timeouts=timeouts) as own:
        return probe(own, handle=handle, source=source)


class Connector:
    """Everything a runner needs: the manifests and one call to run an operation."""

    key = "tiktok_following"

    def __repr__(self) -> str:
        return f"Connector(key={self.key!r})"

    @property
    def manifest(self) -> dict[str, Any]:
        return manifests.load(manifests.CONNECTOR_KEY)

    @property
    def operations(self) -> dict[str, dict[str, Any]]:
        return {key: manifests.load(key) for key in manifests.operation_keys()}

    run = staticmethod(run)


CONNECTOR = Connector()
