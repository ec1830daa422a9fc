"""`python -m bench`: run the benchmarks, print the table, write bench/results.json."""

import argparse
import os
import sys

from .run import PARTS, run


def main(argv=None):
    parts_help = "\n".join(f"  {name:8} {text}" for name, text in PARTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Ingestion and query speed of the service as ratios to the engine's own floor. "
                    "Every figure is the median of 5 rounds; every comparison is measured in the same run. "
                    "Not a test: it never fails on a missed target.",
        epilog=f"parts:\n{parts_help}",
    )
    parser.add_argument("--quick", action="store_true", help="1M events only, smaller runs (about 6 minutes)")
    parser.add_argument("--parts", default=",".join(PARTS), metavar="LIST",
                        help=f"comma-separated parts to run (default: all: {','.join(PARTS)})")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json"),
                        help="where the figures go (bench/results.json)")
    parser.add_argument("--workdir", help="where the temporary data directories go (the system temp dir)")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    run(quick=args.quick, parts=parts, out=args.out, workdir=args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
