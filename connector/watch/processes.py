"""Several watchers, each in a process of its own: `watch --processes N`.

One Python process runs on one core at a time: past a few hundred handles a second, its CPU
(HTTP, JSON, commits) sets the pace, not the API's latency (docs/speed.md). A `WatcherGroup`
splits the handles into N disjoint shards and runs a `Watcher` for each shard in a child
process, all sharing one state database and one webhook. To its caller it is one watcher:
`run_cycle()` and `run()` give one summary per cycle, `stop()` stops them all.

    with WatcherGroup(handles, Webhook(url), processes=2, store="watch.db",
                      concurrency=16) as group:
        print(group.run_cycle().line())

Shards are disjoint, so the children never compete for a handle; the leases in the database
still keep them apart from any other watch on the same handles (watcher.py). Children are
started with `spawn` (never `fork`: the parent may hold threads and open connections), build
their watchers (every check runs there, before anything is sent; the budget and schedule are
checked here first, by Watcher's own rule, before any process starts) and only then are told
to poll. A child that dies costs nothing stored: its handles' states and outbox events are in
the database, and the next watch picks them up.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from ..core.errors import ConnectorError, InputError
from ..operations import FOLLOWED
from .arguments import check_spending, triggers_for
from .summary import CycleSummary
from .watcher import DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, Watcher, unique_handles
from .webhook import Webhook

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger("connector.watch")

#: `auto` adds a process for every this many requests in flight (as many as the machine has
#: cores): below it one process keeps up with its latency-bound polls on a small machine.
PER_PROCESS = 8
#: ... and for every this many handles: a process costs about 0.2 s of CPU to start (and
#: 40 MB), what about 100 handles cost it in a cycle; with fewer it would not pay its way.
HANDLES_PER_PROCESS = 100
#: How long a stopping child may take to finish what it has in flight before it is killed.
STOP_GRACE = 60.0
_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL


def usable_cpus() -> int:
    """The cores this process may run on (its affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover -- macOS, Windows
        return os.cpu_count() or 1


def auto_processes(concurrency: int, handles: int, cpus: int | None = None) -> int:
    """What `--processes auto` means: one process per PER_PROCESS requests in flight, at most
    one per usable core and per HANDLES_PER_PROCESS handles, at least one."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(concurrency // PER_PROCESS, cpus, handles // HANDLES_PER_PROCESS))


def shards(handles: tuple[str, ...], processes: int, concurrency: int
           ) -> list[tuple[tuple[str, ...], int]]:
    """The handles and the concurrency of each process: handles dealt round-robin (so each
    shard is a fair sample of the list), concurrency split as evenly as it goes."""
    return [(handles[i::processes], concurrency // processes + (i < concurrency % processes))
            for i in range(processes)]


class WatcherGroup:
    """`processes` Watchers over disjoint shards of `handles`, each in a child process.

    Takes what `Watcher` takes, but the store must be a path or URL (each child opens its
    own) and every option must be picklable (no `client` or `pacer` objects). `log_setup`, a
    picklable callable, is called first thing in each child to configure its logging.
    """

    def __init__(
        self,
        handles: Iterable[str],
        webhook: Webhook | str,
        *,
        processes: int,
        store: str | os.PathLike[str] | None = None,
        credentials: Mapping[str, Any] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        log_setup: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
        **options: Any,
    ) -> None:
        self.handles = unique_handles(handles)
        #: Fed each interval's summary (the children's polls cannot reach it as they end).
        self.metrics = metrics
        if metrics is not None:
            metrics.watching(self.handles)
        if processes < 1:
            raise InputError("processes must be at least 1", field="processes")
        processes = min(processes, len(self.handles))
        if concurrency < processes:
            raise InputError(f"concurrency ({concurrency}) must be at least the number of "
                             f"processes ({processes}): each polls at least one handle at a "
                             "time; raise --concurrency or lower --processes",
                             field="processes")
        if not (store is None or isinstance(store, (str, os.PathLike))):
            raise TypeError("a WatcherGroup's store is a path or URL: each process opens its own")
        # The rule Watcher applies (each child applies it again), here before any process.
        check_spending(options.get("budget"), options.get("schedule"),
                       options.get("interval", DEFAULT_INTERVAL), options.get("min_interval"),
                       options.get("max_interval"),
                       len(triggers_for(options.get("events", (FOLLOWED,)))))
        # A URL is checked here, before any process starts; each child builds its own.
        sent = Webhook(webhook) if isinstance(webhook, str) else webhook
        self.processes = processes
        #: Where the state database is, as it may be shown (the children say).
        self.location = ""
        self.stopping = False
        self._children: list[_Child] = []
        context = multiprocessing.get_context("spawn")
        try:
            for shard, share in shards(self.handles, processes, concurrency):
                # Each plans its shard's part of a budget the shards spend together.
                part = {**options, "budget_share": len(shard) / len(self.handles)}
                job = (shard, sent, store, credentials, share, part, log_setup)
                try:
                    payload = pickle.dumps(job)
                except Exception as exc:
                    raise TypeError(f"with processes > 1 every watch option must be picklable "
                                    f"(no client, pacer or Store objects): {exc}") from None
                ours, theirs = context.Pipe()
                process = context.Process(target=_child_main, args=(theirs, payload),
                                          name=f"watch-{len(self._children) + 1}", daemon=True)
                process.start()
                theirs.close()
                self._children.append(_Child(len(self._children) + 1, shard, process, ours))
            # Every child checks its options and opens its store before any of them polls.
            for child, (kind, value) in self._gather(self._children):
                if kind == "error":
                    raise value
                if kind != "ready":
                    raise ConnectorError(f"watch process {child.number} of {processes} "
                                         f"could not start ({value})")
                self.location = value
        except BaseException:
            self.close()
            raise
        finally:
            if sent is not webhook:
                sent.close()

    @property
    def pids(self) -> list[int]:
        """The child processes' ids."""
        return [c.process.pid for c in self._children if c.process.pid is not None]

    # Lifecycle

    def stop(self) -> None:
        """Ask every child to wind down (what `Watcher.stop` does, in each). Safe from a
        signal handler."""
        self.stopping = True
        for child in self._children:
            child.signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop every child at once (a second Ctrl-C): safe, the outbox survives kill -9."""
        for child in self._children:
            child.signal(_KILL)

    def close(self) -> None:
        """Stop the children (gracefully, then for good after STOP_GRACE) and wait for them."""
        self.stop()
        for child in self._children:
            child.send("exit")
        for child in self._children:
            child.process.join(STOP_GRACE)
            if child.process.is_alive():
                child.signal(_KILL)
                child.process.join(5)
            child.conn.close()

    def __enter__(self) -> WatcherGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Cycles

    def run_cycle(self) -> CycleSummary:
        """Every child polls its shard once and delivers what is due: one summary."""
        live = [c for c in self._children if c.alive]
        for child in live:
            child.send("cycle")
        parts = [value if kind == "summary" else _lost(child, value)
                 for child, (kind, value) in self._gather(live)]
        parts += [_lost(c, "stopped earlier") for c in self._children if c not in live]
        return self._observed(CycleSummary.merged(parts, handles=len(self.handles)))

    def run(self, on_summary: Callable[[CycleSummary], None] | None = None) -> CycleSummary:
        """Run every child's watch until `stop()`; `on_summary` gets one summary per interval,
        the children's added up, and the last partial one. A child that dies stops the
        others and raises once they are done; nothing stored is lost."""
        live = [c for c in self._children if c.alive]
        for child in live:
            child.send("run")
        intervals = Intervals([c.number for c in live], handles=len(self.handles))
        died: list[str] = []
        while intervals.running:
            for child, (kind, value) in self._gather(
                    [c for c in live if c.number in intervals.running], first=True):
                if kind == "interval":
                    intervals.add(child.number, value)
                    continue
                intervals.end(child.number)
                if kind != "done":
                    died.append(f"process {child.number} {value}")
                    self.stop()
            for summary in intervals.complete():
                self._observed(summary, on_summary)
        last = self._observed(intervals.last(), on_summary)
        if died:
            raise ConnectorError(f"a watch process stopped unexpectedly ({', '.join(died)}), "
                                 "so the others were stopped too; the states and the outbox "
                                 "are intact: start watch again to go on")
        return last

    def _observed(self, summary: CycleSummary,
                  on_summary: Callable[[CycleSummary], None] | None = None) -> CycleSummary:
        if self.metrics is not None:
            self.metrics.observe(summary)
        if on_summary is not None:
            on_summary(summary)
        return summary

    def _gather(self, children: list[_Child], first: bool = False
                ) -> list[tuple[_Child, tuple[str, Any]]]:
        """One message from each of `children` (or, with `first`, from those that have one
        as soon as any has); a child that exits without one gives ("died", why)."""
        out: list[tuple[_Child, tuple[str, Any]]] = []
        waiting = list(children)
        while waiting:
            ready = wait([c.conn for c in waiting] + [c.process.sentinel for c in waiting])
            for child in list(waiting):
                message = child.receive(ready)
                if message is not None:
                    out.append((child, message))
                    waiting.remove(child)
            if first and out:
                break
        return out


class Intervals:
    """The interval summaries of a group's processes, put together: an interval is complete
    once every process still running has reported it; a process's last summary (stopped)
    waits for the others' last ones, and the end is one summary of whatever is left."""

    def __init__(self, numbers: Iterable[int], *, handles: int) -> None:
        self.handles = handles
        self.queued: dict[int, list[CycleSummary]] = {n: [] for n in numbers}
        self.running = set(self.queued)

    def add(self, number: int, summary: CycleSummary) -> None:
        self.queued[number].append(summary)

    def end(self, number: int) -> None:
        """That process reports no more (done, or dead)."""
        self.running.discard(number)

    def complete(self) -> list[CycleSummary]:
        """The intervals every running process has now reported, each as one summary."""
        out = []
        queued, running = self.queued, sorted(self.running)
        while running and all(queued[n] and not queued[n][0].stopped for n in running):
            out.append(CycleSummary.merged([queued[n].pop(0) for n in running],
                                           handles=self.handles))
        return out

    def last(self) -> CycleSummary:
        """The end: the last summaries, and any interval reported after another process had
        stopped or died, as one stopped summary."""
        last = CycleSummary.merged([_one(q) for q in self.queued.values() if q],
                                   handles=self.handles)
        last.stopped = True
        return last


def _one(summaries: list[CycleSummary]) -> CycleSummary:
    """One process's summaries in a row as one: what they did added up, and its outbox
    (pending, parked) as the last one saw it, not the sum of every look at it."""
    out = CycleSummary.merged(summaries, handles=summaries[-1].handles)
    out.pending, out.parked = summaries[-1].pending, summaries[-1].parked
    return out


@dataclass(eq=False)
class _Child:
    """The parent's handle on one child process."""

    number: int
    shard: tuple[str, ...]
    process: Any
    conn: Connection
    alive: bool = True

    def send(self, message: str) -> None:
        if self.alive:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                self.alive = False

    def signal(self, signum: int) -> None:
        pid = self.process.pid
        if pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def receive(self, ready: list[Any]) -> tuple[str, Any] | None:
        """Its next message if one is there; ("died", why) once it exited without one."""
        if self.conn in ready or self.conn.poll():
            with contextlib.suppress(EOFError, OSError):  # closed: it exited without one
                return self.conn.recv()
        elif self.process.sentinel not in ready:
            return None
        self.process.join(5)
        self.alive = False
        code = self.process.exitcode
        return ("died", f"exit code {code}" if code is None or code >= 0
                else f"killed by signal {-code}")


def _lost(child: _Child, why: Any) -> CycleSummary:
    """The summary of a shard whose process gave none: each of its handles failed."""
    summary = CycleSummary(len(child.shard))
    summary.failed = dict.fromkeys(child.shard, f"watch process {child.number}: {why}")
    return summary


def _child_main(conn: Connection, payload: bytes) -> None:
    """A child: build the shard's Watcher, say ready (or why not), then do as told."""
    # Ctrl-C reaches the whole process group: the parent decides, and tells us with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shard, webhook, store, credentials, concurrency, options, log_setup = pickle.loads(payload)
    if log_setup is not None:
        log_setup()
    try:
        watcher = Watcher(shard, webhook, store=store, credentials=credentials,
                          concurrency=concurrency, **options)
    except Exception as exc:
        conn.send(("error", exc if isinstance(exc, ConnectorError)
                   else ConnectorError(f"{type(exc).__name__}: {exc}")))
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: watcher.stop())
    with watcher, contextlib.suppress(BrokenPipeError, EOFError):  # the parent is gone
        conn.send(("ready", watcher.location))
        while True:
            try:
                order = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if order == "cycle":
                conn.send(("summary", watcher.run_cycle()))
            elif order == "run":
                # The parent gone means stop: nobody would read the summaries any more.
                threading.Thread(target=_stop_with_parent, args=(conn, watcher),
                                 daemon=True).start()
                watcher.run(on_summary=lambda s: conn.send(("interval", s)))
                conn.send(("done", None))
                return
            else:
                return


def _stop_with_parent(conn: Connection, watcher: Watcher) -> None:
    with contextlib.suppress(EOFError, OSError):
        conn.recv()
    watcher.stop()
