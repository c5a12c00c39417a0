"""The `companion` command line: serve | demo [FILE] | doctor | models … | bench … | stats.

Only this module prints; `serve` keeps stdout for the protocol and sends everything
else (Python logging and anything a native library writes to fd 1) to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from companion import __version__


def _settings_arg(raw: str | None) -> dict[str, object]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--settings must be a JSON object: {error}") from error
    if not isinstance(value, dict):
        raise SystemExit("--settings must be a JSON object")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the language server on stdin/stdout."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "debug":  # pygls logs every message it sends at INFO
        logging.getLogger("pygls").setLevel(logging.WARNING)
    # The protocol gets a private copy of fd 1; fd 1 itself becomes stderr so that no
    # print() or C library log line can ever corrupt the LSP stream.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    from companion.lsp import create_server

    server = create_server()
    try:
        server.start_io(stdin=sys.stdin.buffer, stdout=protocol_out)
    finally:
        # Exit now: a generation stuck in native code (a hung model) must not keep the
        # process alive after the client said `exit`, as joining worker threads would.
        logging.shutdown()
        os._exit(0)


def cmd_demo(args: argparse.Namespace) -> int:
    from companion.demo.session import main

    return main(args.file, _settings_arg(args.settings))


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one benchmark; print its figures (or JSON)."""
    import importlib

    bench = importlib.import_module(f"companion.bench.{args.kind}")
    report = bench.measure(args)
    print(json.dumps(report, indent=2) if args.json else bench.format_report(report))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from companion.doctor import diagnose, format_report

    report = diagnose(_settings_arg(args.settings), live=not args.no_self_test)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    test = report.get("selfTest")
    return 0 if test is None or test.get("ok") else 1


def cmd_models(args: argparse.Namespace) -> int:
    from companion.models import manager
    from companion.models.hardware import probe

    hw = probe()
    try:
        if args.action == "list":
            found = manager.rows(hw, args.memory_budget_mb, args.format)
            if args.json:
                print(json.dumps([row.to_dict() for row in found], indent=2))
            else:
                print(manager.format_rows(found))
        elif args.action == "pull":
            path = manager.pull(args.id, hw, args.memory_budget_mb, args.format)
            print(f"{args.id}: {path}")
        else:
            removed = manager.remove(args.id)
            print("\n".join(f"removed {path}" for path in removed) or f"{args.id}: nothing on disk")
    except manager.ModelError as error:
        print(f"companion models {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """What the local history says: acceptance, latency per backend and model, fallbacks."""
    import sqlite3
    import time

    from companion.history import report, stats, store
    from companion.history.schema import NewerSchema

    try:
        since = time.time() - stats.parse_duration(args.since) if args.since else None
    except ValueError as error:
        print(f"companion stats: {error}", file=sys.stderr)
        return 2
    path = store.database_path()
    now = time.time()
    try:
        connection = store.open_for_reading(path)
    except (sqlite3.Error, OSError, NewerSchema) as error:
        print(f"companion stats: cannot read {path}: {error}", file=sys.stderr)
        return 1
    try:
        if connection is None:
            result = stats.empty_report(str(path), since, now)
            points: list[tuple[float, float, str]] = []
        else:
            result = stats.collect(connection, since, now, str(path))
            points = report.latency_points(connection, since or 0.0, now) if args.html else []
    finally:
        if connection is not None:
            connection.close()
    if args.html:
        with open(args.html, "w", encoding="utf-8") as out:
            out.write(report.render_html(result, points))
        if not args.json:
            print(f"wrote {args.html}")
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.html:
        print(stats.format_stats(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion",
        description="Local-AI code completion, hover explanations and scaffolds over LSP.",
    )
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the language server over stdio")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser(
        "demo", help="drive a real LSP session on a sample file and print what an editor shows"
    )
    demo.add_argument("file", nargs="?", help="a Python file (default: the bundled sample)")
    demo.add_argument("--settings", help='server settings as JSON, e.g. {"backend": "templates"}')
    demo.set_defaults(func=cmd_demo)

    doctor = commands.add_parser(
        "doctor", help="hardware, backends, the model choice and why, and a live self-test"
    )
    doctor.add_argument("--json", action="store_true", help="print JSON only")
    doctor.add_argument("--settings", help="server settings as JSON")
    doctor.add_argument("--no-self-test", action="store_true", help="skip the live test")
    doctor.set_defaults(func=cmd_doctor)

    models = commands.add_parser("models", help="the model catalog: list | pull ID | remove ID")
    actions = models.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="known models, whether they fit and are on disk")
    listing.add_argument("--json", action="store_true")
    for name in ("pull", "remove"):
        action = actions.add_parser(name, help=f"{name} a catalog model (Hugging Face cache)")
        action.add_argument("id", help="a catalog id or hub id (see `companion models list`)")
    for action in actions.choices.values():
        action.add_argument("--memory-budget-mb", type=int, default=0)
        action.add_argument("--format", choices=["gguf", "hf"], default="gguf")
    models.set_defaults(func=cmd_models)

    bench = commands.add_parser("bench", help="measure speed (see `companion bench -h`)")
    kinds = bench.add_subparsers(dest="kind", required=True)
    latency = kinds.add_parser("latency", help="typing latency through the real server")
    latency.add_argument("--json", action="store_true", help="print JSON only")
    latency.add_argument("--file", help="a Python file to type in (default: a stdlib file)")
    latency.add_argument("--keystrokes", type=int, default=60)
    latency.add_argument("--settings", help="server settings as JSON")
    latency.add_argument("--no-floor", dest="floor", action="store_false",
                         help="skip timing the engine floor (the model called directly)")
    latency.set_defaults(func=cmd_bench)
    quality = kinds.add_parser(
        "quality", help="holes in HumanEval or real packages: exact match, edit similarity, "
        "pass@1 / names that exist, vs a naive baseline"
    )
    quality.add_argument("--json", action="store_true", help="print JSON only")
    quality.add_argument("--suite", choices=["humaneval", "repo", "js"], default="humaneval",
                         help="humaneval; repo: holes in click, rich, jinja2, httpx, "
                         "pygments as installed (the rest of each package is the workspace); "
                         "js: holes in real JavaScript (npm's own sources)")
    quality.add_argument("--limit", type=int, default=None,
                         help="humaneval: cases per category (default 100); repo: holes in "
                         "all (default 40; ~35 min on two cores with --context both); 0 = all")
    quality.add_argument("--context", choices=["both", "on", "off"], default="both",
                         help="repo suite: the pipeline with the repository context off, "
                         "on, or both side by side (default)")
    quality.add_argument("--examples", action="store_true",
                         help="repo suite: every suggestion in the JSON")
    quality.add_argument("--settings", help="server settings as JSON")
    quality.add_argument("--progress", action="store_true", help="a counter on stderr")
    quality.set_defaults(func=cmd_bench)
    decode = kinds.add_parser(
        "decode", help="decode tokens/s of the engine with prompt-lookup drafting on and off, "
        "same spots, same run"
    )
    decode.add_argument("--json", action="store_true", help="print JSON only")
    decode.add_argument("--file", action="append",
                        help="a source file to draft from (repeatable; default: stdlib files)")
    decode.add_argument("--spots", type=int, default=12, help="cursor spots per run")
    decode.add_argument("--tokens", type=int, default=48, help="tokens per spot")
    decode.add_argument("--settings", help="server settings as JSON")
    decode.set_defaults(func=cmd_bench)
    soak = kinds.add_parser("soak", help="a long session; samples the server's memory")
    soak.add_argument("--minutes", type=float, default=10.0)
    soak.add_argument("--json", action="store_true", help="print JSON only")
    soak.add_argument("--settings", help="server settings as JSON")
    soak.set_defaults(func=cmd_bench)

    history = commands.add_parser(
        "stats",
        help="local history: suggestions shown and kept, latency, fallbacks",
        description="What the local history database (never sent anywhere) says about your "
        "suggestions: shown, accepted, acceptance rate, accepted characters, latency p50/p95 "
        "and tokens/s per backend and model, and fallbacks to templates with their reasons. "
        "The database lives in the user data dir ($COMPANION_DATA_DIR overrides).",
    )
    history.add_argument("--json", action="store_true", help="print JSON only")
    history.add_argument("--since", metavar="DURATION",
                         help="only the last DURATION, e.g. 30m, 12h, 7d (default: all kept)")
    history.add_argument("--html", metavar="FILE",
                         help="also write a self-contained HTML report with charts to FILE")
    history.set_defaults(func=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from companion.lspclient import ServerGone

    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ServerGone as gone:  # demo, bench, doctor: never a wait on a dead server
        print(f"companion {args.command}: {gone}", file=sys.stderr)
        return 1
    return result
