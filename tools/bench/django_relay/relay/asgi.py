"""ASGI entry point: `daphne relay.asgi:application` (from tools/bench/django_relay)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from relay.consumers import HostConsumer, JoinConsumer  # noqa: E402

# The same URLs as Airwave (PROTOCOL.md 2.1, 2.2), with and without the trailing slash.
ID = r"[A-Za-z0-9_.@-]{1,64}"
websocket_urlpatterns = [
    re_path(rf"^ws/stream/start/live/(?P<user_id>{ID})/?$", HostConsumer.as_asgi()),
    re_path(rf"^ws/stream/live/join/event/(?P<event_id>{ID})/(?P<user_id>{ID})/?$", JoinConsumer.as_asgi()),
    re_path(rf"^ws/stream/live/join/event/(?P<event_id>{ID})/(?P<username>[^/]{{1,64}})/(?P<user_id>{ID})/?$",
            JoinConsumer.as_asgi()),
]

application = ProtocolTypeRouter({"websocket": URLRouter(websocket_urlpatterns)})
