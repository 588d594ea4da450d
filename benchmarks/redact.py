"""What masking secrets costs a log line: `redact` (any run of 8 characters of a secret) against
the whole-secret replace it took over from (one `str.replace` per secret), and against the
formatting of the log line itself (the CLI's RedactingFormatter without its masking).

Four secrets, as a `watch` with a key, a base URL password, a secret webhook path and a header
value has: a typical log line with none of them in it, the same line with a piece of the key
quoted in it, and a 5 KB traceback (what `-vv` prints for a bug). CPU time (process_time),
best of 9 timeit rounds with old and new taking turns in each: the figure is the cost itself,
not the machine's other work.
"""

from __future__ import annotations

import logging
import time
import timeit
from collections.abc import Callable

from connector.core.redact import Whole

from .report import Section, Target

#: As `watch` holds them: the webhook's path is masked only whole (`Whole`), as Webhook.secrets
#: gives it.
SECRETS = ["sk_live_4f9a2c7e1b8d3f6a0c", "pw-9b1e77c2d0", Whole("/hooks/catch/4821/a7f3c9e1/"),
           "hdr-5c7e9d1f2a"]
LINE = ("INFO connector.watch: @alice: 3 new follows (3 queued), 1 request, 10 credits, rate "
        "limit 97/100 left; delivered 3 to https://hooks.example/… in 120 ms")
QUOTED = LINE + " (upstream said: key " + SECRETS[0][2:] + " is revoked)"
TRACEBACK = "Traceback (most recent call last):\n" + "".join(
    f'  File "/usr/lib/python3/site-packages/connector/core/http.py", line {100 + i}, in '
    f"fetch_page\n    resp = self._poster.post(json.dumps(body).encode(), timeout=t)\n"
    for i in range(38))
#: What a line may cost at most, on top of the whole-secret replace, for the target.
TARGET_EXTRA_US = 5.0


def whole_secrets(text: str, secrets: list[str]) -> str:
    """The masking before issue 18 (whole secrets only), for comparison."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def best_us(calls: list[Callable[[], object]], number: int, rounds: int = 9) -> list[float]:
    """Each call's best time in µs over `rounds`, the calls taking turns in every round, so a
    busy moment of the machine falls on all of them alike."""
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            seconds = timeit.Timer(call, timer=time.process_time).timeit(number)
            best[i] = min(best[i], seconds / number * 1e6)
    return best


def run(quick: bool = False) -> Section:
    from connector.cli.common import RedactingFormatter
    from connector.core.redact import redact
    from connector.core.secrets import Secrets

    number = 1000 if quick else 10000
    secrets = Secrets(*SECRETS)
    formatter = RedactingFormatter(secrets, "%(levelname)s %(name)s: %(message)s")
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("connector.watch", logging.INFO, __file__, 1, LINE, None, None)
    rows, extra = [], 0.0
    for name, text in (("log line, no secret in it", LINE),
                       ("log line quoting key[2:]", QUOTED),
                       (f"traceback, {len(TRACEBACK) // 1000} KB", TRACEBACK)):
        before, after = best_us([lambda t=text: whole_secrets(t, SECRETS),
                                 lambda t=text: redact(t, SECRETS)],
                                number // max(1, len(text) // 500))
        rows.append([name, f"{len(text)}", f"{before:.2f} µs", f"{after:.2f} µs"])
        if text is LINE:
            extra = after - before
    formatted, masked = best_us([lambda: plain.format(record), lambda: formatter.format(record)],
                                number)
    rows.append(["the log line through the CLI's formatter", f"{len(LINE)}",
                 f"{formatted:.2f} µs (no masking)", f"{masked:.2f} µs"])
    return Section(
        name="redact",
        title="Masking secrets in a log line",
        method=__doc__ or "",
        headers=["text", "characters", "whole secrets (before)", "any 8 characters (now)"],
        rows=rows,
        targets=[Target(f"masking any 8-character piece adds at most {TARGET_EXTRA_US:g} µs "
                        "to a typical log line", f"{extra:+.2f} µs", extra <= TARGET_EXTRA_US)],
    )
