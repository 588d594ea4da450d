"""Retries: urllib3's `Retry`, set for the API's POSTs and for a webhook's, and kept to the
deadline of the exchange in progress (core/deadline.py)."""

from __future__ import annotations

import time
from typing import Any

import urllib3
from urllib3.util.retry import Retry

from . import deadline
from .config import RetryPolicy


class _Retry(Retry):
    """urllib3 Retry with `Retry-After` capped, whatever the urllib3 2.x release, that keeps
    to the deadline of the exchange in progress (core/deadline.py): no try starts after it,
    and no wait runs past it. When the next wait would, the last answer stands (a 503 is
    reported as the 503 it is) or the last error does."""

    retry_after_cap: float = 30.0
    #: Whether a read timeout is retried. Not for webhooks: a timeout means the receiver is
    #: slow, and a second try would only be slow again.
    retry_timeouts: bool = True
    #: Seconds `sleep` waits before the next try, decided by `increment` (None: urllib3's own).
    planned_wait: float | None = None

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def new(self, **kw: Any) -> _Retry:
        new = super().new(**kw)
        new.retry_after_cap = self.retry_after_cap
        new.retry_timeouts = self.retry_timeouts
        return new

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: Any = None) -> _Retry:
        if not self.retry_timeouts and isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise error
        exchange = deadline.CURRENT.exchange
        if exchange is not None and exchange.remaining() <= 0:
            raise deadline.DeadlinePassed from error
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if exchange is not None:
            after = (self.get_retry_after(response)
                     if response is not None and self.respect_retry_after_header else None)
            new.planned_wait = after or new.get_backoff_time()
            if new.planned_wait >= exchange.remaining():
                reason = error or urllib3.exceptions.ResponseError(
                    f"no time left for another try after HTTP "
                    f"{getattr(response, 'status', '?')}")
                raise urllib3.exceptions.MaxRetryError(_pool, url, reason)
        return new

    def sleep(self, response: Any = None) -> None:
        if self.planned_wait is None:
            super().sleep(response)
        elif self.planned_wait > 0:
            time.sleep(self.planned_wait)


#: What every POST's Retry says: POST may be retried, an error that is neither a connection's
#: nor a read's is not, a redirect is never followed (a 30x is the answer), and the last
#: answer is handed back rather than raised.
_POSTS = {"allowed_methods": frozenset({"POST"}), "other": 0, "redirect": 0,
          "raise_on_status": False, "raise_on_redirect": False}


def build_retry(policy: RetryPolicy) -> Retry:
    """The urllib3 Retry for our POSTs: the endpoint only reads, so retrying POST is safe."""
    retry = _Retry(
        **_POSTS,
        total=policy.total,
        status_forcelist=policy.statuses,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        backoff_jitter=policy.backoff_jitter,
    )
    retry.retry_after_cap = policy.retry_after_max
    return retry


def fresh_connection_retry() -> Retry:
    """For POSTs that are not safe to repeat blindly (a webhook's): one more try, at once, when
    the request got no answer at all because the connection broke (reset, aborted, broken pipe,
    the peer closing an idle kept-alive connection). The next connection is checked before use,
    so the retry goes out on a live one. Not for a connection that could not be made (the
    receiver is down), nor a read timeout (it is slow), nor any answer."""
    retry = _Retry(**_POSTS, total=1, connect=0, read=1, status=0, backoff_factor=0)
    retry.retry_timeouts = False
    return retry
