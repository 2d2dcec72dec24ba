"""A small fake of the Telegram Bot API on 127.0.0.1, to run the real python-telegram-bot against.

It does what twinbot relies on the way Telegram does it: long polling with offsets (unconfirmed
updates come again), webhook delivery with the secret token header, message and caption limits
counted in UTF-16 units, edits that must change something, "Forbidden" for private chats the user
never started, getFile with the 20 MB download limit, and HTTP 400 for unknown methods. Every call
the bot makes is recorded (method, parameters, uploaded file bytes, the result) for assertions.
Tests play the users: `send()` makes a user's message arrive as an update.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from PIL import Image

TOKEN = "4242:fake-telegram-token"
BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Twinbot", "username": "twinbot_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": True, "supports_inline_queries": False}
DOWNLOAD_LIMIT = 20_000_000
MESSAGE_METHODS = ("sendMessage", "sendPhoto", "sendAnimation", "sendDocument")
_JSON_FIELDS = {"reply_parameters", "commands", "allowed_updates", "scope", "entities", "caption_entities",
                "link_preview_options", "reply_markup"}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
T = TypeVar("T")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    username: str | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "is_bot": False, "first_name": self.first_name,
                **({"username": self.username} if self.username else {})}


@dataclass(frozen=True)
class Chat:
    id: int
    type: str
    title: str | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "type": self.type, **({"title": self.title} if self.title else {})}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    result: Any = None
    error: str | None = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return self.params.get("text") or self.params.get("caption") or ""


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}
        self.declared_sizes: dict[str, int] = {}
        """file id -> the size a user's document claims (lets a test send a "25 MB" file cheaply)."""
        self.chats: dict[int, Chat] = {}
        self.started: set[int] = set()
        """Users who opened a private chat with the bot; the bot may message only them."""
        self.failing: dict[str, tuple[int, str]] = {}
        self.webhook: dict[str, Any] | None = None
        self._pending: list[dict] = []
        self._messages: dict[tuple[int, int], dict] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._pusher: asyncio.Task | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- serving -------------------------------------------------------------------------------------

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
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._closing = True
        await self._notify()
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # --- playing the users ---------------------------------------------------------------------------

    def private_chat(self, user: User) -> Chat:
        chat = Chat(user.id, "private")
        self.chats[chat.id] = chat
        return chat

    def group(self, chat_id: int = -1001, title: str = "Friends") -> Chat:
        chat = Chat(chat_id, "supergroup", title)
        self.chats[chat.id] = chat
        return chat

    def send(self, user: User, chat: Chat, text: str = "", *, reply_to: dict | None = None,
             document: bytes | None = None, filename: str = "result.json", file_size: int | None = None,
             photo: bytes | None = None, text_mentions: tuple[tuple[User, str], ...] = ()) -> dict:
        """A user's message arrives: commands and @mentions carry entities as Telegram sets them; with
        `document` or `photo`, the text is its caption."""
        if chat.type == "private":
            self.started.add(user.id)
        message: dict[str, Any] = {"message_id": next(self._ids), "date": int(time.time()),
                                   "chat": chat.as_dict(), "from": user.as_dict()}
        media = document is not None or photo is not None
        key, entities_key = ("caption", "caption_entities") if media else ("text", "entities")
        if text:
            message[key] = text
            entities = self._entities(text, text_mentions)
            if entities:
                message[entities_key] = entities
        if document is not None:
            file_id = f"doc-{message['message_id']}"
            self.files[file_id] = document
            self.declared_sizes[file_id] = len(document) if file_size is None else file_size
            message["document"] = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": filename,
                                   "mime_type": "application/json",
                                   "file_size": self.declared_sizes[file_id]}
        if photo is not None:
            message["photo"] = self._photo_sizes(f"photo-{message['message_id']}", photo)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self._queue({"message": message})
        return message

    def _photo_sizes(self, file_id: str, photo: bytes) -> list[dict]:
        """The sizes Telegram lists for a photo, smallest first: a 90 px thumbnail, then the picture."""
        picture = Image.open(io.BytesIO(photo))
        thumbnail = picture.convert("RGB")
        thumbnail.thumbnail((90, 90))
        buffer = io.BytesIO()
        thumbnail.save(buffer, "JPEG")
        sizes = []
        for suffix, data, (width, height) in (("-s", buffer.getvalue(), thumbnail.size), ("", photo, picture.size)):
            self.files[file_id + suffix] = data
            sizes.append({"file_id": file_id + suffix, "file_unique_id": f"u-{file_id}{suffix}", "width": width,
                          "height": height, "file_size": len(data)})
        return sizes

    @staticmethod
    def _entities(text: str, text_mentions: tuple[tuple[User, str], ...]) -> list[dict]:
        def span(start: int, end: int) -> dict:
            return {"offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}

        entities = []
        command = re.match(r"/\w+(@\w+)?", text)
        if command:
            entities.append({"type": "bot_command", **span(0, command.end())})
        for mention in re.finditer(r"@\w{3,}", text):
            entities.append({"type": "mention", **span(mention.start(), mention.end())})
        for user, shown in text_mentions:
            start = text.index(shown)
            entities.append({"type": "text_mention", "user": user.as_dict(), **span(start, start + len(shown))})
        return sorted(entities, key=lambda e: e["offset"])

    def add_file(self, data: bytes) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = data
        return file_id

    def fail(self, method: str, status: int = 500, description: str = "Internal Server Error") -> None:
        """Make every call of `method` fail until `heal()`."""
        self.failing[method] = (status, description)

    def heal(self) -> None:
        self.failing.clear()

    # --- assertions ---------------------------------------------------------------------------------

    def mark(self) -> int:
        """A bookmark in the call log: `replies(chat, after=mark)` looks only past it."""
        return len(self.calls)

    def calls_of(self, method: str, after: int = 0) -> list[Call]:
        return [c for c in self.calls[after:] if c.method == method and c.error is None]

    def messages_to(self, chat: Chat | int, after: int = 0) -> list[Call]:
        chat_id = chat if isinstance(chat, int) else chat.id
        return [c for c in self.calls[after:] if c.method in MESSAGE_METHODS and c.error is None
                and c.chat_id == chat_id]

    async def replies(self, chat: Chat | int, after: int, count: int = 1, timeout: float = 30.0) -> list[Call]:
        """Wait until `count` messages went to `chat` after the bookmark; exactly those are returned."""
        found = await self.wait_for(lambda: len(self.messages_to(chat, after)) >= count or None, timeout)
        assert found
        return self.messages_to(chat, after)[:count]

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 30.0) -> T:
        """Wait until `predicate()` is truthy (it is checked after every call the bot makes)."""
        async def satisfied() -> T:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(satisfied(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out; the bot called {[c.method for c in self.calls]}") from None

    # --- the Bot API ----------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _queue(self, update: dict) -> None:
        self._pending.append({"update_id": next(self._ids), **update})
        asyncio.get_running_loop().create_task(self._notify())

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        call = Call(method, params, files)
        if method != "getUpdates":
            self.calls.append(call)
        try:
            if method in self.failing:
                raise ApiError(*self.failing[method])
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise ApiError(400, f"Bad Request: method {method} not found")
            call.result = await handler(params, files)
        except ApiError as exc:
            call.error = exc.description
            response = web.json_response({"ok": False, "error_code": exc.status, "description": exc.description},
                                         status=exc.status)
        else:
            response = web.json_response({"ok": True, "result": call.result})
        await self._notify()
        return response

    @staticmethod
    async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                elif key in _JSON_FIELDS:
                    params[key] = json.loads(value)
                else:
                    params[key] = value
        return params, files

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def _chat(self, params: dict[str, Any]) -> Chat:
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat_id = int(params["chat_id"])
        if chat_id > 0 and chat_id not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return self.chats.get(chat_id) or Chat(chat_id, "private" if chat_id > 0 else "supergroup")

    def _new_message(self, params: dict[str, Any], **content: Any) -> dict:
        chat = self._chat(params)
        message = {"message_id": next(self._ids), "date": int(time.time()), "chat": chat.as_dict(),
                   "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")}, **content}
        if params.get("message_thread_id"):
            message["message_thread_id"] = int(params["message_thread_id"])
        self._messages[(chat.id, message["message_id"])] = message
        return message

    @staticmethod
    def _checked_text(text: str | None) -> str:
        if not text or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _checked_caption(caption: str | None) -> dict:
        if caption and utf16_len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": caption} if caption else {}

    def _upload(self, files: dict[str, bytes], name: str) -> tuple[str, bytes]:
        data = files.get(name)
        if data is None:
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        file_id = self.add_file(data)
        return file_id, data

    async def _m_getme(self, params: dict, files: dict) -> dict:
        return BOT_USER

    async def _m_setmycommands(self, params: dict, files: dict) -> bool:
        for command in params.get("commands", []):
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: command description must be 1-256 characters")
        return True

    async def _m_deletewebhook(self, params: dict, files: dict) -> bool:
        self.webhook = None
        if self._pusher is not None:
            self._pusher.cancel()
        return True

    async def _m_setwebhook(self, params: dict, files: dict) -> bool:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        self._pusher = asyncio.get_running_loop().create_task(self._push_to_webhook())
        return True

    async def _m_getupdates(self, params: dict, files: dict) -> list[dict]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        self._pending = [u for u in self._pending if u["update_id"] >= offset]  # earlier ones are confirmed
        timeout = float(params.get("timeout") or 0)
        if not self._pending and timeout:
            async def arrived() -> None:
                async with self._changed:
                    await self._changed.wait_for(lambda: bool(self._pending) or self._closing)

            try:
                await asyncio.wait_for(arrived(), timeout)
            except TimeoutError:
                pass
        return list(self._pending)

    async def _push_to_webhook(self) -> None:
        """Deliver queued updates to the webhook as Telegram does, in order, with the secret header."""
        assert self.webhook is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook["secret_token"] or ""}
        async with aiohttp.ClientSession(trust_env=False) as session:
            while True:
                async with self._changed:
                    await self._changed.wait_for(lambda: bool(self._pending))
                update = self._pending[0]
                try:
                    async with session.post(self.webhook["url"], json=update, headers=headers) as response:
                        delivered = response.status == 200
                except aiohttp.ClientError:
                    delivered = False
                if delivered:
                    self._pending.pop(0)
                else:  # Telegram retries later too
                    await asyncio.sleep(0.05)

    async def _m_sendmessage(self, params: dict, files: dict) -> dict:
        return self._new_message(params, text=self._checked_text(params.get("text")))

    async def _m_sendphoto(self, params: dict, files: dict) -> dict:
        caption = self._checked_caption(params.get("caption"))
        file_id, data = self._upload(files, "photo")
        if not data.startswith(_IMAGE_MAGIC):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        size = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 256, "height": 256,
                "file_size": len(data)}
        return self._new_message(params, photo=[size], **caption)

    async def _m_sendanimation(self, params: dict, files: dict) -> dict:
        caption = self._checked_caption(params.get("caption"))
        file_id, data = self._upload(files, "animation")
        item = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data)}
        return self._new_message(params, animation={**item, "width": 192, "height": 192, "duration": 2},
                                 document={**item, "file_name": "animation.gif"}, **caption)

    async def _m_senddocument(self, params: dict, files: dict) -> dict:
        caption = self._checked_caption(params.get("caption"))
        file_id, data = self._upload(files, "document")
        return self._new_message(params, document={"file_id": file_id, "file_unique_id": f"u-{file_id}",
                                                   "file_size": len(data)}, **caption)

    async def _m_sendchataction(self, params: dict, files: dict) -> bool:
        self._chat(params)
        if params.get("action") not in {"typing", "upload_photo", "upload_document", "record_video",
                                        "upload_video", "record_voice", "upload_voice", "find_location",
                                        "record_video_note", "upload_video_note", "choose_sticker"}:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _editable(self, params: dict) -> dict:
        message = self._messages.get((int(params.get("chat_id", 0)), int(params.get("message_id", 0))))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def _m_editmessagetext(self, params: dict, files: dict) -> dict:
        message = self._editable(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._checked_text(params.get("text"))
        if text == message["text"]:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message.update(text=text, edit_date=int(time.time()))
        return message

    async def _m_editmessagecaption(self, params: dict, files: dict) -> dict:
        message = self._editable(params)
        caption = self._checked_caption(params.get("caption")).get("caption")
        if caption == message.get("caption"):
            raise ApiError(400, "Bad Request: message is not modified")
        message.update(caption=caption, edit_date=int(time.time()))
        return message

    async def _m_getfile(self, params: dict, files: dict) -> dict:
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        declared = self.declared_sizes.get(file_id, len(self.files[file_id]))
        if declared > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": declared,
                "file_path": f"documents/{file_id}"}
