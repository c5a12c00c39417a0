"""`companion bench soak --minutes N`: a long session through real files — typing with
inline completions, completion lists, hovers and code actions — sampling the server's
resident memory, which must not grow without bound (every cache is bounded)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sysconfig
import time
from pathlib import Path
from typing import Any

import psutil

from companion.engine.context import split_lines
from companion.lspclient import CompanionClient

FILES = ("textwrap.py", "shlex.py", "fnmatch.py", "heapq.py", "glob.py", "queue.py",
         "sched.py", "bisect.py", "colorsys.py", "netrc.py", "calendar.py", "string.py")
TYPED = "    value = compute(items)\n    return value\n"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(sysconfig.get_paths()["stdlib"])
    files = [folder / name for name in FILES if (folder / name).is_file()]
    settings = json.loads(args.settings) if args.settings else {}
    rng = random.Random(7)
    client = CompanionClient()
    samples: list[tuple[float, float]] = []
    counts = {"inline": 0, "completion": 0, "hover": 0, "codeAction": 0, "files": 0}
    started = time.perf_counter()
    deadline = started + args.minutes * 60
    try:
        await client.start(settings)
        await client.wait_ready()
        assert client._server is not None
        process = psutil.Process(client._server.pid)
        while time.perf_counter() < deadline:
            path = files[counts["files"] % len(files)]
            counts["files"] += 1
            text = path.read_text(encoding="utf-8")
            uri = client.open(path, text)
            lines = split_lines(text)
            line = rng.randrange(1, max(2, len(lines) - 1))
            client.insert(uri, line, 0, "\n")
            column = 0
            for char in TYPED:
                if time.perf_counter() > deadline:
                    break
                client.insert(uri, line, column, char)
                if char == "\n":
                    line, column = line + 1, 0
                else:
                    column += 1
                await client.inline(uri, line, column)
                counts["inline"] += 1
            await client.complete(uri, line, column)
            counts["completion"] += 1
            for _ in range(3):
                target = rng.randrange(0, len(lines))
                await client.hover(uri, target, 5)
                counts["hover"] += 1
            await client.code_actions(uri, rng.randrange(0, len(lines)), 0)
            counts["codeAction"] += 1
            client.close_document(uri)
            samples.append((time.perf_counter() - started, process.memory_info().rss / 2**20))
        status = await client.status()
    finally:
        await client.close()
    first = samples[0][1] if samples else 0.0
    peak = max((rss for _, rss in samples), default=0.0)
    half = len(samples) // 2
    second_half_growth = (samples[-1][1] - samples[half][1]) if half else 0.0
    return {
        "minutes": args.minutes,
        "backend": status["backend"],
        "model": status["model"],
        "requests": counts,
        "memoryMB": {"first": round(first, 1), "last": round(samples[-1][1], 1) if samples
                     else 0.0, "peak": round(peak, 1),
                     "growthSecondHalf": round(second_half_growth, 1)},
        "samples": [(round(t, 1), round(m, 1)) for t, m in samples],
        "latency": status["latencyByKind"],
        "errors": status["requests"].get("errors", 0),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(run(args))


def format_report(report: dict[str, Any]) -> str:
    memory = report["memoryMB"]
    lines = [
        f"{report['minutes']} min soak on {report['backend']} · {report['model']}: "
        f"{report['requests']}",
        f"server memory: first {memory['first']} MB, last {memory['last']} MB, peak "
        f"{memory['peak']} MB, growth over the second half {memory['growthSecondHalf']} MB",
    ]
    for kind, row in report["latency"].items():
        lines.append(f"  {kind}: p50 {row['p50Ms']} ms, p95 {row['p95Ms']} ms "
                     f"({row['count']} recent)")
    return "\n".join(lines)
