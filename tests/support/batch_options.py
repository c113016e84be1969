"""The batching options the benchmark scripts share (scripts/bench.py, roundtrips.py):
which batch settings they pass to the worker they start."""

from __future__ import annotations

import argparse

BATCH_SIZE_ENV = "ORDERQ_BATCH_MAX_SIZE"
BATCH_WAIT_ENV = "ORDERQ_BATCH_MAX_WAIT_MS"


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """`--no-batching`, `--batch-size N`, `--batch-wait-ms X`."""
    batching = parser.add_mutually_exclusive_group()
    batching.add_argument(
        "--no-batching",
        action="store_true",
        help=f"start the worker with {BATCH_SIZE_ENV}=1 (one task per message)",
    )
    batching.add_argument("--batch-size", type=int, help=f"{BATCH_SIZE_ENV} for the worker")
    parser.add_argument("--batch-wait-ms", type=float, help=f"{BATCH_WAIT_ENV} for the worker")


def batch_env(args: argparse.Namespace) -> dict[str, str]:
    """What the script passes to its worker's environment for batching."""
    env = {}
    if args.no_batching:
        env[BATCH_SIZE_ENV] = "1"
    elif args.batch_size is not None:
        env[BATCH_SIZE_ENV] = str(args.batch_size)
    if args.batch_wait_ms is not None:
        env[BATCH_WAIT_ENV] = str(args.batch_wait_ms)
    return env
