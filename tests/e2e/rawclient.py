"""A bare JSON-RPC client over the server's stdio, for fuzzing: it sends exactly what it is
given (malformed params and frames included) and matches every answer to its request."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
from typing import Any


class RawClient:
    """`python -m companion serve` driven with raw JSON-RPC messages."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[None] | None = None

    async def start(self, settings: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "companion", "serve", "--log-level", "error",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
        )
        self._reader = asyncio.ensure_future(self._read())
        self._stderr = asyncio.ensure_future(self._drain())
        await self.request("initialize", {"processId": None, "rootUri": None,
                                          "capabilities": {}, "initializationOptions": settings})
        self.notify("initialized", {})

    async def _drain(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while await self.process.stderr.readline():
            pass

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        while True:
            length = 0
            while True:
                header = await stream.readline()
                if not header:
                    return
                if header in (b"\r\n", b"\n"):
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(await stream.readexactly(length))
            if "method" in message and "id" in message:  # a request from the server
                result: Any = [{}] if message["method"] == "workspace/configuration" else None
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})
            elif "method" in message:
                self.notifications.append(message)
            else:
                future = self.pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)

    def _write(self, message: Any) -> None:
        self.write_bytes(json.dumps(message).encode("utf-8"))

    def write_bytes(self, body: bytes, header: bytes | None = None) -> None:
        """A frame with `body` (a wrong `header` makes a malformed frame)."""
        assert self.process is not None and self.process.stdin is not None
        frame = header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()
        self.process.stdin.write(frame + body)

    def send(self, method: str, params: Any = None, with_params: bool = True
             ) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        msg_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if with_params:
            message["params"] = params
        self._write(message)
        return msg_id, future

    async def request(self, method: str, params: Any = None, timeout: float = 60
                      ) -> dict[str, Any]:
        _, future = self.send(method, params)
        return await asyncio.wait_for(future, timeout)

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def cancel(self, msg_id: int) -> None:
        self.notify("$/cancelRequest", {"id": msg_id})

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            await self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            await asyncio.wait_for(self.process.wait(), timeout=10)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for task in (self._reader, self._stderr):
            if task is not None:
                task.cancel()
