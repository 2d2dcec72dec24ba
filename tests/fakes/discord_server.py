"""A small fake of Discord's gateway and REST API on 127.0.0.1, for running the real discord.py against.

The gateway says HELLO, takes IDENTIFY, sends READY and one GUILD_CREATE, acks heartbeats, and lets
a test dispatch INTERACTION_CREATE and MESSAGE_CREATE. REST records every request (payload,
files, allowed_mentions) and answers the routes twinbot uses. As on Discord, the first follow-up
of a deferred interaction replaces its "thinking…" message and so keeps the deferral's visibility,
whatever flags it asks for, unless that message was deleted first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = "900000000000000001"
BOT_ID = APP_ID
GUILD_ID = "800000000000000001"
CHANNEL_ID = "700000000000000001"
EVERYONE_PERMS = str(0x7FFFFFFFFFF)


def _json(data: Any, status: int = 200) -> web.Response:
    """discord.py parses a body as JSON only when Content-Type is exactly application/json (no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def user(user_id: str, name: str, bot: bool = False) -> dict:
    return {"id": user_id, "username": name, "global_name": name.title(), "discriminator": "0", "avatar": None,
            "bot": bot}


BOT_USER = user(BOT_ID, "twinbot", bot=True)


@dataclass
class Request:
    method: str
    path: str
    json: Any = None
    files: dict[str, bytes] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    created_id: str | None = None  # the id the fake gave a message this request created
    ephemeral: bool | None = None
    """Whether the message this request created or edited is shown to the caller alone (Discord decides)."""


class FakeDiscord:
    def __init__(self, members: list[dict]) -> None:
        self.members = members
        self.requests: list[Request] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ws: web.WebSocketResponse | None = None
        self._seq = itertools.count(1)
        self._ids = itertools.count(10_000)
        self.identified = asyncio.Event()
        self.changed = asyncio.Event()
        self.attachments: dict[str, bytes] = {}
        self.fail_files = False
        self.thinking: dict[str, bool] = {}
        """Interaction token -> whether its deferral's message is ephemeral, until a follow-up replaces it."""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/attachments/{id}", self._attachment)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def next_id(self) -> str:
        return str(next(self._ids))

    # --- gateway ----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45_000}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["op"] == 1:
                await ws.send_json({"op": 11})
            elif data["op"] == 2:
                await self._ready()
        return ws

    async def _ready(self) -> None:
        await self.send_event("READY", {
            "v": 10, "user": BOT_USER, "guilds": [{"id": GUILD_ID, "unavailable": True}], "session_id": "session",
            "resume_gateway_url": self.ws_url, "application": {"id": APP_ID, "flags": 0}, "shard": [0, 1],
        })
        everyone = {"id": GUILD_ID, "name": "@everyone", "permissions": EVERYONE_PERMS, "position": 0, "color": 0,
                    "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        members = [{"user": u, "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                    "flags": 0} for u in [BOT_USER, *self.members]]
        await self.send_event("GUILD_CREATE", {
            "id": GUILD_ID, "name": "Test guild", "owner_id": self.members[0]["id"], "member_count": len(members),
            "members": members, "roles": [everyone], "emojis": [], "stickers": [], "threads": [], "presences": [],
            "voice_states": [], "features": [], "large": False, "unavailable": False, "premium_tier": 0,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "preferred_locale": "en-US", "system_channel_flags": 0,
            "channels": [{"id": CHANNEL_ID, "type": 0, "name": "general", "position": 0, "guild_id": GUILD_ID,
                          "permission_overwrites": []}],
        })
        self.identified.set()

    async def send_event(self, name: str, data: dict) -> None:
        assert self._ws is not None
        await self._ws.send_json({"op": 0, "t": name, "s": next(self._seq), "d": data})

    # --- test helpers -----------------------------------------------------------------------

    def member(self, member: dict) -> dict:
        return {"user": member, "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                "permissions": EVERYONE_PERMS, "flags": 0}

    async def interact(self, name: str, who: dict, options: list[dict] | None = None,
                       resolved: dict | None = None) -> str:
        """Send a slash-command INTERACTION_CREATE; returns its token."""
        token = f"tok{self.next_id()}"
        await self.send_event("INTERACTION_CREATE", {
            "id": self.next_id(), "application_id": APP_ID, "type": 2, "token": token, "version": 1,
            "data": {"id": self.next_id(), "name": name, "type": 1, "options": options or [],
                     **({"resolved": resolved} if resolved else {})},
            "guild_id": GUILD_ID, "channel_id": CHANNEL_ID,
            "channel": {"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "general"},
            "member": self.member(who), "app_permissions": EVERYONE_PERMS, "locale": "en-US",
            "guild_locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID},
            "context": 0, "attachment_size_limit": 10 * 1024 * 1024,
        })
        return token

    async def post_message(self, who: dict, content: str, *, mentions: list[dict] | None = None,
                           reply_to: str | None = None) -> str:
        message_id = self.next_id()
        await self.send_event("MESSAGE_CREATE", {
            **self.message_payload(message_id, who, content, mentions=mentions),
            "guild_id": GUILD_ID, "member": {k: v for k, v in self.member(who).items() if k != "user"},
            **({"message_reference": {"message_id": reply_to, "channel_id": CHANNEL_ID, "guild_id": GUILD_ID},
                "type": 19} if reply_to else {}),
        })
        return message_id

    def message_payload(self, message_id: str, author: dict, content: str, mentions: list[dict] | None = None,
                        **extra: Any) -> dict:
        return {"id": message_id, "channel_id": CHANNEL_ID, "author": author, "content": content,
                "timestamp": "2024-01-01T00:00:00+00:00", "edited_timestamp": None, "tts": False,
                "mention_everyone": False, "mentions": mentions or [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": False, "type": 0, "flags": 0, **extra}

    def of(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

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
        raise AssertionError(f"timed out; requests were {[(r.method, r.path) for r in self.requests]}")

    # --- REST -------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> tuple[Any, dict[str, bytes]]:
        if request.content_type == "application/json":
            return await request.json(), {}
        if request.content_type.startswith("multipart/"):
            payload, files = None, {}
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files[part.filename or part.name] = await part.read()
            return payload, files
        return None, {}

    async def _attachment(self, request: web.Request) -> web.Response:
        return web.Response(body=self.attachments.get(request.match_info["id"], b""))

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read(request)
        self.requests.append(Request(request.method, path, body, files, dict(request.query)))
        self.changed.set()
        if files and self.fail_files:
            return _json({"message": "Internal Server Error", "code": 0}, status=500)
        if path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.ws_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
        if path == "/users/@me":
            return _json(BOT_USER)
        if path == "/oauth2/applications/@me":
            return _json({"id": APP_ID, "name": "twinbot", "icon": None, "description": "", "bot_public": True,
                          "bot_require_code_grant": False, "verify_key": "0" * 64, "owner": self.members[0],
                          "flags": 0, "summary": "", "rpc_origins": []})
        if path.endswith("/commands") and request.method == "PUT":
            return _json([{**c, "id": self.next_id(), "application_id": APP_ID, "version": "1",
                                       "type": c.get("type", 1)} for c in body])
        if path.endswith("/callback"):
            return self._callback(path, body)
        if path.endswith("/typing"):
            return web.Response(status=204)
        if request.method == "DELETE" and path.startswith("/webhooks/") and path.endswith("/messages/@original"):
            self.thinking.pop(path.split("/")[3], None)
            return web.Response(status=204)
        if request.method in ("POST", "PATCH") and ("/webhooks/" in path or path.endswith("/messages")
                                                     or "/messages/" in path):
            message_id = path.rsplit("/", 1)[-1] if request.method == "PATCH" else self.next_id()
            self.requests[-1].created_id = message_id
            flags = self._shown_flags(path, body or {}) if request.method == "POST" else 0
            if request.method == "POST":
                self.requests[-1].ephemeral = bool(flags & 64)
            content = (body or {}).get("content") or ""
            return _json(self.message_payload(message_id, BOT_USER, content, flags=flags,
                                              embeds=(body or {}).get("embeds") or []))
        return _json({"message": "Unknown route", "code": 0}, status=404)

    def _shown_flags(self, path: str, body: dict) -> int:
        """The flags a new message gets: a first follow-up takes over the deferral's message and its flags."""
        token = path.split("/")[3] if path.startswith("/webhooks/") and path.count("/") == 3 else None
        if token in self.thinking:
            return 64 if self.thinking.pop(token) else 0
        return body.get("flags", 0)

    def _callback(self, path: str, body: dict) -> web.Response:
        interaction_id = path.split("/")[2]
        kind = body["type"]
        flags = (body.get("data") or {}).get("flags", 0)
        message_id = self.next_id()
        if kind == 5:
            self.thinking[path.split("/")[3]] = bool(flags & 64)
        payload: dict = {"interaction": {"id": interaction_id, "type": 2, "response_message_id": message_id,
                                         "response_message_loading": kind == 5,
                                         "response_message_ephemeral": bool(flags & 64)}}
        if kind == 4:
            payload["resource"] = {"type": 4, "message": self.message_payload(message_id, BOT_USER,
                                                                              body["data"].get("content", ""))}
        return _json(payload)
