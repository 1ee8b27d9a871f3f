"""`remotemedia batch`: one manifest over many recordings, on a process pool or Ray.
"""

from __future__ import annotations

import os
import sys

from ..engine import strictjson
from .common import (_note, _print_stdout, add_exact_format_argument, add_json_argument,
                     add_manifest_arguments, parse_workers)


def add_batch_parser(sub) -> None:
    """Add the `batch` command (manifest, INPUTS, --out, --workers, --ray, --json, --allow-
    import) to the subparsers `sub`."""
    p = sub.add_parser("batch", help="run a manifest over many recordings (a pool or Ray)",
                       description="Run a manifest over every input in simulated time, on a "
                                   "local process pool or, with --ray, as Ray tasks. INPUTS are "
                                   "audio files, directories, glob patterns and list files "
                                   "(@FILE or *.txt). Reports and events go under --out; a "
                                   "rerun with the same --out skips inputs already done.")
    add_manifest_arguments(p, required=True)
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", "-o", default="batch-out", metavar="DIR",
                   help="where reports, events and summary.json go (default: %(default)s)")
    p.add_argument("--workers", "-w", type=parse_workers, metavar="N",
                   help="inputs run at once (default: the CPUs here, or the cluster's)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run each input as a Ray task on the cluster at ADDRESS (default: the "
                        "one ray.init() finds: RAY_ADDRESS, one started here, else a new one)")
    add_json_argument(p, "print the JSON summary as the last line of stdout")
    add_exact_format_argument(p)
    p.set_defaults(command=cmd_batch)


def cmd_batch(args) -> int:
    """`remotemedia batch`: run the manifest over every input in simulated time on a process
    pool or, with --ray, as Ray tasks; reports and events go under --out. Prints the summary
    on stderr (with --json also as the last line of stdout) and returns the batch's exit
    code: 0 all inputs ok, 1 some failed, 130/143 when stopped by SIGINT/SIGTERM. A bare
    --ray followed by an input is read as that input."""
    from ..batch import format_summary, run_batch

    address, inputs = args.ray, list(args.inputs)
    if address and (os.path.exists(address) or any(c in address for c in "*?[")
                    or address.startswith("@")):
        # `--ray a.wav b.wav`: the value argparse gave --ray is an input, not an address.
        inputs.insert(0, address)
        address = ""
    result = run_batch(args.manifest, inputs, args.out, workers=args.workers,
                       use_ray=args.ray is not None, ray_address=address or None,
                       allow_import=tuple(args.allow_import),
                       exact_format=args.exact_format)
    summary = result.summary
    print(format_summary(summary), file=sys.stderr)
    _note(f"batch: summary in {os.path.join(summary['out'], 'summary.json')}")
    if args.json:
        _print_stdout(strictjson.dumps(summary))
    return result.exit_code
