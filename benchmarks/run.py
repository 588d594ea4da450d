"""Run the benchmarks, print a table, and write BENCHMARKS.md at the repository root.

    python benchmarks/run.py            # everything, a few minutes
    python benchmarks/run.py --quick    # every section shrunk: a smoke test under a minute
    python benchmarks/run.py --only overhead
    python benchmarks/run.py --only scale --output /tmp/scale.md   # keep a partial report
    python benchmarks/run.py --only against --against ../old --against-python ../old/bin/python

Only a full run writes BENCHMARKS.md (unless --output says otherwise).
"""

from __future__ import annotations

import argparse
import compileall
import shlex
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    # Run as a script: import the benchmarks as a package, and nothing from this folder bare.
    sys.path[0] = str(ROOT)

from benchmarks import (  # noqa: E402
    adaptive_live,
    against,
    coldstart,
    credits,
    overhead,
    redact,
    scale,
    scheduling,
    single,
    state,
    unfollows,
    workers,
)
from benchmarks.machine import describe  # noqa: E402
from benchmarks.report import Section, render_markdown, render_text  # noqa: E402

PREAMBLE = (
    "The stand-in is the package's own (`connector/standin/`); it sets TCP_NODELAY on its "
    "connections itself, so responses are not held back by the client's delayed ACK, and "
    "takes the latency a section adds. The connector's modules run from compiled bytecode, "
    "as an installed package does (`pip install` compiles them; `run.py` compiles the "
    "checkout first). The machine is shared: ratios are measured side by side in one run, "
    "and repeated where a section says so. `--quick` shrinks every section for a smoke test; "
    "`--only NAME` runs one section."
)

SECTIONS = {
    "credits": credits.run,
    "overhead": overhead.run,
    "single": single.run,
    "coldstart": coldstart.run,
    "scale": scale.run,
    "state": state.run,
    "unfollows": unfollows.run,
    "workers": workers.run,
    # Minutes, not seconds: 1,000 handles over 30 simulated days, on two processes.
    "scheduling": scheduling.run,
    # The real watch with a budget for a minute and a half: adaptive against fixed.
    "adaptive-live": adaptive_live.run,
    "redact": redact.run,
    # Only with --against: this code's CPU per handle beside an earlier checkout's.
    "against": against.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="shrink every section (a smoke test, not figures to publish)")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", metavar="NAME",
                        help=f"run only this section (repeatable): {', '.join(SECTIONS)}")
    parser.add_argument("--output", type=Path,
                        help="where to write the Markdown report (default: BENCHMARKS.md for a "
                             "full run; a --quick or --only run writes one only when given this, "
                             "so it never replaces the full report by accident)")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="a checkout of an earlier release, for the `against` section (run "
                             "only when given)")
    parser.add_argument("--against-python", metavar="PY",
                        help="the interpreter the earlier checkout runs on, with its "
                             "dependencies (default: this one)")
    args = parser.parse_args(argv)
    against.configure(args.against, args.against_python)
    command = shlex.join(["python", "benchmarks/run.py",
                          *(sys.argv[1:] if argv is None else argv)])
    names = [n for n in SECTIONS if (n in args.only if args.only else
                                     n != "against" or args.against)]
    # As `pip install` does: without bytecode every process would compile the package first.
    compileall.compile_dir(str(ROOT / "connector"), quiet=1)

    sections = []
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            section = SECTIONS[name](quick=args.quick)
        except Exception as exc:  # one broken section must not cost the others' figures
            traceback.print_exc()
            section = Section(name=name, title=name, skipped=f"failed: {exc!r}")
        section.seconds = time.perf_counter() - started
        sections.append(section)

    print(render_text(sections))
    partial = None
    if args.quick:
        partial = "Quick run: every section shrunk; these figures are a smoke test only."
    elif args.only:
        partial = f"Only these sections were run: {', '.join(names)}."
    output = args.output or (None if partial else ROOT / "BENCHMARKS.md")
    if output is not None:
        output.write_text(render_markdown(sections, describe(), command=command,
                                          partial=partial, preamble=PREAMBLE), encoding="utf-8")
        print(f"\nwrote {output}", file=sys.stderr)
    else:
        print("\nBENCHMARKS.md left as it was (a partial run); --output FILE keeps this report",
              file=sys.stderr)
    missed = any(t.met is False for s in sections for t in s.targets)
    failed = any(s.skipped and s.skipped.startswith("failed") for s in sections)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
