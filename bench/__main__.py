"""``python -m bench [--quick] [--only a,b,...] [--markdown] [--save]``: run and print.

Runs the benchmarks of issues 2, 5, 11, 12, 13 and 23 one after another, each against its own
``pairchat-server`` process over a temporary data folder, prints each table as
soon as it is measured, then a summary of every target (PASS/MISS). Nothing is
written outside the temporary folder, except with ``--save`` (bench/results/,
git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    abuse,
    cluster,
    delivery,
    history,
    idle,
    metrics_cost,
    scale,
    search,
    throughput,
    tui_keys,
    wakeups,
)
from bench.report import Table, summary
from bench.settings import Settings

Benchmark = Callable[[Settings], Awaitable[Table | list[Table]]]
RESULTS = Path(__file__).resolve().parent / "results"


def _tui_benchmark() -> Benchmark | str:
    """(e) when the TUI offers ``tui.app.make_app``; otherwise why it is pending."""
    if importlib.util.find_spec("tui.app") is None:
        return "tui/app.py does not exist yet"
    import tui.app

    if not callable(getattr(tui.app, "make_app", None)):
        return "tui/app.py has no make_app() factory yet"
    from bench import tui_live, tui_open

    async def both(settings: Settings) -> list[Table]:
        return [await tui_open.run(settings), await tui_live.run(settings)]

    return both


def _pending(title: str, why: str) -> Table:
    table = Table(title, ["figure", "status"])
    table.add("time to first screen, memory", f"TODO: pending: {why}")
    return table


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return (
        f"{os.cpu_count()} CPU(s) {model}; Python {platform.python_version()}; "
        f"granian {version('granian')}; {platform.system()} {platform.release()}"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (smaller, shorter)")
    parser.add_argument(
        "--only",
        default="a,b,c,d,e,f,g,h,i,j,k,l",
        help="comma-separated subset of a,b,c,d,e,f,g,h,i,j,k,l (default: all)",
    )
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    parser.add_argument("--save", action="store_true", help="also write bench/results/")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, workdir: Path) -> list[Table]:
    settings = Settings(workdir, quick=args.quick)
    tui = _tui_benchmark()
    benchmarks: dict[str, Benchmark | str] = {
        "a": throughput.run,
        "b": history.run,
        "c": delivery.run,
        "d": idle.run,
        "e": tui,
        "f": abuse.run,
        "g": scale.run,
        "h": search.run,
        "i": wakeups.run,
        "j": cluster.run,
        "k": tui_keys.run,
        "l": metrics_cost.run,
    }
    tables: list[Table] = []
    for key in [k.strip() for k in args.only.split(",") if k.strip()]:
        bench = benchmarks.get(key)
        if bench is None:
            raise SystemExit(f"unknown benchmark {key!r}; choose from {','.join(benchmarks)}")
        started = time.perf_counter()
        measured: Table | list[Table]
        if isinstance(bench, str):
            measured = _pending("(e) TUI opening a long conversation", bench)
        else:
            try:
                measured = await bench(settings)
            except Exception as exc:  # report and go on with the next benchmark
                traceback.print_exc()
                measured = Table(f"({key}) failed", ["error"])
                measured.add(f"{type(exc).__name__}: {exc}")
        for table in measured if isinstance(measured, list) else [measured]:
            table.note(f"measured in {time.perf_counter() - started:.0f} s")
            tables.append(table)
            print(table.render(args.markdown), end="\n\n", flush=True)
    return tables


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    header = f"pairchat benchmarks{' (quick)' if args.quick else ''} on {machine()}"
    print(header, end="\n\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="pairchat-bench-") as workdir:
        tables = asyncio.run(run(args, Path(workdir)))
    print(summary(tables, args.markdown))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.save:
        _save(header, tables)


def _save(header: str, tables: list[Table]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "\n\n".join([header, *(t.render(True) for t in tables), summary(tables, True)])
    (RESULTS / f"{stamp}.md").write_text(text + "\n")
    verdicts = [
        {
            "table": v.table,
            "figure": v.label,
            "value": v.value,
            "target": str(v.target),
            "passed": v.passed,
        }
        for t in tables
        for v in t.verdicts
    ]
    (RESULTS / f"{stamp}.json").write_text(json.dumps(verdicts, indent=2) + "\n")
    print(f"saved bench/results/{stamp}.md and .json")


if __name__ == "__main__":
    main()
