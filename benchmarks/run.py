"""One command for every benchmark: `python -m benchmarks.run [--quick] [--only SECTIONS]`.

Prints one JSON line per measurement on stdout (progress goes to stderr) and writes a report:
the full run -> benchmarks/RESULTS.md and benchmarks/results.jsonl; `--quick` (a smoke run for CI,
under a minute) -> benchmarks/out/ only, so it never overwrites the published results.
With `--only`, the sections not run keep their previous figures from benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import BENCH_DIR, Recorder, log, machine

SECTIONS = (
    "training", "quality", "pictures", "likelihood", "denoiser", "latency", "photos", "app", "load",
    "recsys", "recvae", "clicks", "room", "multiworker",
)  # fmt: skip
# Left out of a plain `--quick` (ask with `--only load` / `--only recsys`): 2 sessions x 5 s still
# need a server start and the pages' first loads, ~25 s in all; the recommender's quick run trains
# two models on ml-latest-small and a 1/20-scale epoch, ~2 min; likelihood trains a model and clicks
# starts a server and a browser; multiworker starts four training processes (~30 s even on the sample).
QUICK_SKIPS = ("load", "recsys", "recvae", "likelihood", "clicks", "room", "multiworker")
# Section -> (module, function(rec, quick)); training also yields quality (see below).
MODULES = {
    "training": ("benchmarks.training", "run"),
    "pictures": ("benchmarks.pictures", "run"),
    "likelihood": ("benchmarks.likelihood", "run"),
    "clicks": ("benchmarks.click_cost", "run"),
    "denoiser": ("benchmarks.denoiser", "run"),
    "latency": ("benchmarks.latency", "run"),
    "photos": ("benchmarks.photos", "run"),
    "app": ("benchmarks.app_bench", "run"),
    "load": ("benchmarks.load", "bench"),
    "recsys": ("benchmarks.recsys", "run"),
    "recvae": ("benchmarks.recsys", "run_recvae"),
    "room": ("benchmarks.wsload", "bench"),
    "multiworker": ("benchmarks.multiworker", "run"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--quick", action="store_true", help="tiny smoke run (< 60 s); writes to benchmarks/out/"
    )
    ap.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all; with --quick all but "
        "load, whose quick run alone takes ~25 s)",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for the report (default: see above)"
    )
    args = ap.parse_args(argv)
    if args.only is None:
        args.only = ",".join(s for s in SECTIONS if not (args.quick and s in QUICK_SKIPS))
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    out_dir = args.out or (BENCH_DIR / "out" if args.quick else BENCH_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "results"
    rec = Recorder()
    started = time.time()
    info = machine()
    rec.emit("meta", "machine", quick=args.quick, sections=only, **info)

    # Training and quality come from the same runs (the timed models are the ones evaluated), so
    # asking for either runs both.
    failures = []
    plan = ["training"] if {"training", "quality"} & set(only) else []
    plan += [s for s in SECTIONS[2:] if s in only]
    for section in plan:
        module, func = MODULES[section]
        t0 = time.time()
        log(f"== {section}")
        try:
            getattr(__import__(module, fromlist=[func]), func)(rec, args.quick)
            if section == "training":
                from benchmarks import quality

                quality.emit_targets(rec)
        except Exception as err:  # one broken section must not lose the others' figures
            failures.append(section)
            rec.emit(
                section,
                "error",
                error=f"{type(err).__name__}: {err}",
                traceback=traceback.format_exc()[-3000:],
            )
        log(f"== {section} done in {time.time() - t0:.0f} s")

    ran = {"training", "quality"} if plan and plan[0] == "training" else set()
    ran |= set(plan)
    records = rec.records
    jsonl = out_dir / f"{stem}.jsonl"
    if not args.quick and ran != set(SECTIONS) and jsonl.exists():
        old = [json.loads(ln) for ln in jsonl.read_text().splitlines() if ln.strip()]
        records = [r for r in old if r["section"] not in ran | {"meta"}] + records
    jsonl.write_text("".join(json.dumps(r, default=str) + "\n" for r in records))

    from benchmarks import report

    md = out_dir / ("RESULTS.md" if not args.quick else "RESULTS.quick.md")
    md.write_text(report.render(records, quick=args.quick, seconds=time.time() - started))
    rec.emit("meta", "done", seconds=time.time() - started, report=str(md), failures=failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
