"""``slm-bench``: the embedded runner behind SLM-Lab's own command line.

``slm-bench run [-s key=value ...] [--] SPEC_FILE SPEC_NAME train`` behaves like ``slm-lab run``:
it resolves the spec the way SLM-Lab does, trains with Stable-Baselines3, prints SLM-Lab's log
lines and writes ``data/FOLDER`` in SLM-Lab's layout under the current directory. ``--`` ends the
options (as in ``slm-lab run``), so a spec path starting with ``-`` is read as SPEC_FILE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import FrameType

from slm_bench.errors import BenchError
from slm_bench.runners.process_group import in_owned_group, run_owned
from slm_bench.runners.signal_handlers import handling
from slm_bench.runners.stop_signals import RUN_STOP_SIGNALS


def _parse_set(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"-s expects key=value, got {text!r}")
    return key, value


def _parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"--seed expects an integer in [0, 2**32), got {text!r}")
    return seed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slm-bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train a spec like `slm-lab run` (embedded runner)")
    run.add_argument(
        "-s",
        "--set",
        dest="sets",
        action="append",
        type=_parse_set,
        default=[],
        metavar="KEY=VALUE",
        help="substitute ${KEY} in the spec file",
    )
    run.add_argument("--workers", type=int, default=1, help="sessions trained in parallel")
    run.add_argument(
        "--seed",
        type=_parse_seed,
        default=None,
        help="fixed seed: session s gets SEED + 1000 * s (default: from the current time)",
    )
    run.add_argument(
        "--reevaluate-top",
        type=int,
        default=3,
        metavar="K",
        help="search: train the K best trials again on fresh seeds and pick by their mean"
        " (0: the single best trial, as SLM-Lab picks)",
    )
    run.add_argument("spec_file")
    run.add_argument("spec_name")
    run.add_argument("mode", nargs="?", default="train", choices=["train", "search"])
    return parser


def run_command(args: argparse.Namespace) -> int:
    from slm_bench.formats.naming import run_name
    from slm_bench.formats.spec import resolve_spec
    from slm_bench.runners.embedded import run_trial

    sets = dict(args.sets)
    spec = resolve_spec(Path(args.spec_file), args.spec_name, sets)
    if args.mode == "search":
        from slm_bench.runners.embedded.search import run_search

        run_search(
            spec,
            spec_file=args.spec_file,
            spec_name=args.spec_name,
            run_name=run_name(args.spec_name, sets),
            data_root=Path("data"),
            workers=max(1, args.workers),
            seed=args.seed,
            reevaluate_top=max(0, args.reevaluate_top),
        )
        return 0
    run_trial(
        spec,
        spec_file=args.spec_file,
        spec_name=args.spec_name,
        run_name=run_name(args.spec_name, sets),
        data_root=Path("data"),
        mode=args.mode,
        max_workers=max(1, args.workers),
        seed=args.seed,
    )
    return 0


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not in_owned_group():
        # Started by its user, not by a pipeline job or a search: the run goes on in a child,
        # in a group this process owns, so that a SIGKILL of this process (kill -9, the OOM
        # killer), which no handler sees, still ends its session workers and trials.
        again = [sys.executable, "-m", "slm_bench", *(sys.argv[1:] if argv is None else argv)]
        return run_owned(again, Path.cwd(), RUN_STOP_SIGNALS)
    # SIGTERM or SIGHUP to this process alone would end it at once and leave its session
    # workers training for the rest of the run; as an exception, the trial stops them first (a
    # search stops its trial processes first: ``stop_signals.stop_first``). SIGINT too, so
    # that every stop ends with 128+signal and no traceback. An ignored signal (nohup, a
    # background job of a script) stays ignored.
    with handling(RUN_STOP_SIGNALS, _exit_on_signal):
        try:
            return {"run": run_command}[args.command](args)
        except BenchError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
