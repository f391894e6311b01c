"""A minimal Django Channels relay of Airwave's live-event URLs, written the way the Channels
service that Airwave replaces worked: one consumer per WebSocket, one channel-layer group per
event, and one `group_send` per media frame that every member's consumer receives and writes
to its socket unless it sent the frame itself.

It implements only what `airwave-bench` exercises (PROTOCOL.md 2.1–2.3): `stream_link` for the
host; `stream_state` and `chat_history` for a joiner; `invite_cohost` / `cohost_invite` /
`accept_cohost` / `cohost_joined`; `broadcast_message`; `stream_ended`; binary media frames
from the host and co-hosts with the sender's source id written into bytes 4–8. It does not
verify tokens (the `?token=` parameter is accepted and ignored), does not check Opus
payloads, and sends no `participant_joined`/`participant_list`/`participant_count`, so a join
costs it less than it cost the original service. Events live in this process's memory, as
the in-memory channel layer does.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from channels.generic.websocket import AsyncWebsocketConsumer

HEADER_SIZE = 16
CHAT_HISTORY = 100


@dataclass
class Event:
    """One live event; the original service kept this in database rows."""

    event_id: str
    host_user_id: str
    started_at: str
    members: dict[str, str] = field(default_factory=dict)  # user id -> channel name
    cohosts: set[str] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)
    source_ids: dict[str, int] = field(default_factory=dict)
    chat: deque = field(default_factory=lambda: deque(maxlen=CHAT_HISTORY))
    ended: bool = False

    @property
    def group(self) -> str:
        return f"event_{self.event_id}"

    def source_id(self, user_id: str) -> int:
        return self.source_ids.setdefault(user_id, len(self.source_ids) + 1)


EVENTS: dict[str, Event] = {}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class EventConsumer(AsyncWebsocketConsumer):
    """What the host's and a joiner's connections share: media, chat and the end of the event."""

    event: Event | None = None
    user_id: str = ""

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))

    async def error(self, code: str, message: str, close_code: int | None = None) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, "details": {}})
        if close_code is not None:
            await self.close(code=close_code)

    @property
    def is_speaker(self) -> bool:
        event = self.event
        return event is not None and (self.user_id == event.host_user_id or self.user_id in event.cohosts)

    async def receive(self, text_data=None, bytes_data=None):
        if self.event is None or self.event.ended:
            return
        if bytes_data is not None:
            await self.receive_media(bytes_data)
            return
        try:
            message = json.loads(text_data)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            await self.error("bad_message", "Not a JSON object with a type.")
            return
        handler = getattr(self, f"on_{kind}", None) if isinstance(kind, str) and kind.isidentifier() else None
        if handler is None:
            await self.error("unknown_type", f"Unknown message type {kind!r}.")
            return
        await handler(message)

    async def receive_media(self, frame: bytes) -> None:
        if not self.is_speaker:
            await self.error("not_allowed", "Only the host and co-hosts may send media.")
            return
        if len(frame) < HEADER_SIZE or frame[0] != 1:
            return
        source_id = self.event.source_id(self.user_id)
        out = frame[:4] + source_id.to_bytes(4, "big") + frame[8:]
        await self.channel_layer.group_send(
            self.event.group, {"type": "media.frame", "frame": out, "sender": self.channel_name})

    async def on_broadcast_message(self, message: dict) -> None:
        text = message.get("message", message.get("text"))
        if not isinstance(text, str) or not 1 <= len(text) <= 2000:
            await self.error("bad_message", "message must be 1–2000 characters.")
            return
        entry = {"username": self.user_id, "user_id": self.user_id, "message": text, "sent_at": now_iso()}
        self.event.chat.append(entry)
        await self.channel_layer.group_send(self.event.group, {"type": "chat.message", "entry": entry})

    async def leave_event(self) -> None:
        event = self.event
        if event is None:
            return
        await self.channel_layer.group_discard(event.group, self.channel_name)
        if event.members.get(self.user_id) == self.channel_name:
            del event.members[self.user_id]
            event.cohosts.discard(self.user_id)
            event.invited.discard(self.user_id)

    # Group message handlers (one per `type`, dots become underscores).

    async def media_frame(self, message: dict) -> None:
        if message["sender"] != self.channel_name:
            await self.send(bytes_data=message["frame"])

    async def chat_message(self, message: dict) -> None:
        await self.send_json({"type": "message_broadcast", **message["entry"]})

    async def cohost_invite(self, message: dict) -> None:
        await self.send_json({"type": "cohost_invite", "from_user": message["from_user"],
                              "message": f"{message['from_user']} invited you to speak."})

    async def cohost_joined(self, message: dict) -> None:
        await self.send_json({"type": "cohost_joined", "participant_id": message["user_id"],
                              "user_id": message["user_id"], "username": message["user_id"],
                              "source_id": message["source_id"], "message": f"{message['user_id']} is now a co-host."})

    async def stream_ended(self, message: dict) -> None:
        await self.send_json({"type": "stream_ended", "event_id": message["event_id"],
                              "message": "The stream has ended."})
        await self.close(code=1000)


class HostConsumer(EventConsumer):
    """`/ws/stream/start/live/{userId}/?token=`: starts a new event and answers `stream_link`."""

    async def connect(self):
        self.user_id = self.scope["url_route"]["kwargs"]["user_id"]
        event = Event(event_id=uuid.uuid4().hex, host_user_id=self.user_id, started_at=now_iso())
        event.members[self.user_id] = self.channel_name
        event.source_id(self.user_id)
        EVENTS[event.event_id] = event
        self.event = event
        await self.channel_layer.group_add(event.group, self.channel_name)
        await self.accept()
        host = next((v for k, v in self.scope["headers"] if k == b"host"), b"127.0.0.1").decode("latin-1")
        await self.send_json({"type": "stream_link", "event_id": event.event_id,
                              "join_url": f"ws://{host}/ws/stream/live/join/event/{event.event_id}/",
                              "mode": "audio", "resumed": False})

    async def disconnect(self, code):
        event = self.event
        if event is not None and not event.ended:
            await self.end_event()
        await self.leave_event()

    async def end_event(self) -> None:
        event = self.event
        event.ended = True
        EVENTS.pop(event.event_id, None)
        await self.channel_layer.group_send(event.group, {"type": "stream.ended", "event_id": event.event_id})

    async def on_stream_ended(self, message: dict) -> None:
        await self.end_event()

    async def on_invite_cohost(self, message: dict) -> None:
        user_id = message.get("user_id")
        channel = self.event.members.get(user_id) if isinstance(user_id, str) else None
        if channel is None or user_id in self.event.cohosts:
            await self.error("cannot_invite", "That user cannot be invited.")
            return
        self.event.invited.add(user_id)
        await self.channel_layer.send(channel, {"type": "cohost.invite", "from_user": self.user_id})


class JoinConsumer(EventConsumer):
    """`/ws/stream/live/join/event/{eventId}/{userId}/`: joins an event as a listener."""

    async def connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        self.user_id = kwargs["user_id"]
        event = EVENTS.get(kwargs["event_id"])
        await self.accept()
        if event is None:
            await self.error("event_not_found", "No such live event.", close_code=4404)
            return
        self.event = event
        event.members[self.user_id] = self.channel_name
        await self.channel_layer.group_add(event.group, self.channel_name)
        await self.send_json({"type": "stream_state", "event_id": event.event_id, "mode": "audio",
                              "host": {"user_id": event.host_user_id, "username": event.host_user_id},
                              "screen": None, "started_at": event.started_at})
        await self.send_json({"type": "chat_history", "messages": list(event.chat)})

    async def disconnect(self, code):
        await self.leave_event()

    async def on_accept_cohost(self, message: dict) -> None:
        event = self.event
        if self.user_id not in event.invited:
            await self.error("no_pending_invite", "There is no invite to accept.")
            return
        event.invited.discard(self.user_id)
        event.cohosts.add(self.user_id)
        await self.channel_layer.group_send(event.group, {"type": "cohost.joined", "user_id": self.user_id,
                                                          "source_id": event.source_id(self.user_id)})

    async def on_leave_room(self, message: dict) -> None:
        await self.close(code=1000)
