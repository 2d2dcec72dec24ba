"""A small fake of the Telegram Bot API on 127.0.0.1, for running the real python-telegram-bot against.

It answers the methods twinbot uses, records every call (method, params, uploaded files), serves
files for getFile, and hands out queued updates through long polling.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 4242
BOT_USERNAME = "twinbot_test_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


class FakeTelegram:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.updates: asyncio.Queue[dict] = asyncio.Queue()
        self.files: dict[str, bytes] = {}
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self.fail_methods: set[str] = set()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.changed = asyncio.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- test helpers ---------------------------------------------------------------------

    def push(self, update: dict) -> None:
        self.updates.put_nowait({"update_id": next(self._update_ids), **update})

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate, timeout: float = 30.0) -> Any:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except TimeoutError:
                pass
        raise AssertionError(f"timed out; calls were {[c.method for c in self.calls]}")

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    # --- the API --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    try:
                        params[key] = json.loads(value)
                    except (TypeError, ValueError):
                        params[key] = value
        return params, files

    def _message(self, params: dict[str, Any], **extra: Any) -> dict:
        chat_id = int(params.get("chat_id", 0))
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Twinbot", "username": BOT_USERNAME}, **extra}

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await self._params(request)
        if method != "getUpdates":
            self.calls.append(Call(method, params, files))
            self.changed.set()
        if method in self.fail_methods:
            return web.json_response({"ok": False, "error_code": 500, "description": "Internal Server Error"},
                                     status=500)
        result = await self._result(method, params, files)
        if result is None:
            return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {method}"},
                                     status=400)
        return web.json_response({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Twinbot", "username": BOT_USERNAME,
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method in ("setMyCommands", "deleteWebhook", "sendChatAction", "setWebhook"):
            return True
        if method == "getUpdates":
            return await self._get_updates(float(params.get("timeout", 0) or 0))
        if method == "sendMessage":
            return self._message(params, text=params.get("text", ""))
        if method == "editMessageText":
            return self._message(params, text=params.get("text", ""), message_id=int(params["message_id"]))
        if method in ("sendPhoto", "sendAnimation", "sendDocument"):
            kind = {"sendPhoto": "photo", "sendAnimation": "animation", "sendDocument": "document"}[method]
            item = {"file_id": f"f{len(self.calls)}", "file_unique_id": f"u{len(self.calls)}", "width": 1, "height": 1}
            payload = [item] if kind == "photo" else item
            return self._message(params, **{kind: payload, "caption": params.get("caption")})
        if method == "getFile":
            file_id = params["file_id"]
            if file_id not in self.files:
                return None
            return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(self.files[file_id]),
                    "file_path": f"documents/{file_id}"}
        return None

    async def _get_updates(self, timeout: float) -> list[dict]:
        try:
            first = await asyncio.wait_for(self.updates.get(), timeout) if timeout else self.updates.get_nowait()
        except (TimeoutError, asyncio.QueueEmpty):
            return []
        batch = [first]
        while not self.updates.empty():
            batch.append(self.updates.get_nowait())
        return batch

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])
