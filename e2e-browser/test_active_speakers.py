"""Active speakers in real Chromium (issue 14; PROTOCOL.md 2.3 `active_speakers`, docs/protocol.md
"Audio level in the frame header").

- The host page goes live with a fake microphone playing a 440 Hz sine at amplitude 0.4
  (RMS −11 dBov): every Opus frame it sends carries `0x80 | level` in header byte 3 with the
  RFC 6464 level of that tone (seen on the wire with Playwright's `framesent`); a plain WebSocket
  listener receives `active_speakers` naming the host at that level; the listener page marks the
  host's row as speaking, with an accessible "speaking" label, and unmarks it while muted.
- A co-host speaking from the listener page (660 Hz) is marked as speaking on the host page;
  muted by the host, the mark goes away.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import threading
import time
import urllib.parse

from websockets.sync.client import connect as ws_connect

from conftest import awtest, new_page

HOST_HZ = 440
COHOST_HZ = 660
# The conftest tone: a sine of amplitude 0.4, mean square 0.08, so −10·log10(0.08) = 11 −dBov.
TONE_RFC6464 = 11


def url(server, page, **query):
    return f"{server.http}/{page}?{urllib.parse.urlencode(query)}"


class Listener:
    """A plain WebSocket listener that keeps every JSON message (read on a thread)."""

    def __init__(self, server, event_id, user_id):
        self._stack = contextlib.ExitStack()
        path = awtest.join_path(event_id, user_id, awtest.token(user_id), username="Ravi")
        self.ws = self._stack.enter_context(ws_connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=10, close_timeout=3))
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for raw in self.ws:
                if isinstance(raw, str):
                    with self._cond:
                        self.messages.append(json.loads(raw))
                        self._cond.notify_all()
        except Exception:
            pass

    def wait_for(self, pred, timeout=15.0, since=None, what="a message"):
        """The first message matching pred (after the message `since`, if given)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                start = 0 if since is None else next(i for i, m in enumerate(self.messages) if m is since) + 1
                for msg in self.messages[start:]:
                    if pred(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout} s; last messages {self.messages[-8:]}")
                self._cond.wait(left)

    def close(self):
        with contextlib.suppress(Exception):
            self._stack.close()


def record_sent_levels(page):
    """Byte 3 of every binary frame the page sends on any WebSocket."""
    sent: list[int] = []

    def on_socket(ws):
        ws.on("framesent", lambda payload: sent.append(payload[3]) if isinstance(payload, bytes) and len(payload) >= 16 else None)

    page.on("websocket", on_socket)
    return sent


def speaking_row(user_id):
    return f'#participants tr[data-user="{user_id}"][data-speaking] .speaking[aria-label="speaking"]'


def settled(page):
    """Until the speaking rings have finished growing (their CSS transition), for a steady screenshot."""
    page.wait_for_function("[...document.querySelectorAll('.speaking')].every((n) => n.getAnimations().length === 0)")


def go_live(server, browser, logs, name="Hana"):
    host_id = awtest.uid("host")
    host = new_page(browser, logs)
    sent = record_sent_levels(host)
    host.goto(url(server, "host.html", user=host_id, name=name, token=awtest.token(host_id, name), processing="0"))
    host.click("#go-live")
    host.wait_for_function("window.airwave.eventId")
    return host, host_id, host.evaluate("window.airwave.eventId"), sent


def test_host_level_in_frames_and_listener_sees_host_speaking(server, launch, shot):
    logs: list[str] = []
    host, host_id, event_id, sent = go_live(server, launch(tone_hz=HOST_HZ), logs)
    raw = Listener(server, event_id, awtest.uid("raw"))
    listener = new_page(launch(), logs)
    listener.goto(url(server, "listen.html", event=event_id, user=awtest.uid("lena"), name="Lena"))
    listener.wait_for_selector(f'#participants tr[data-user="{host_id}"]')
    try:
        # The server sends active_speakers only when the list changes, so the host pauses and
        # speaks again while both listeners are in: a fresh list then reaches them for sure.
        host.click("#mute")
        host.wait_for_selector("#mute:has-text('Unmute')")
        listener.wait_for_selector(f'#participants tr[data-user="{host_id}"]:not([data-speaking])')
        host.click("#mute")
        unmuted = raw.wait_for(lambda m: m.get("type") == "unmuted" and m.get("user_id") == host_id, what="unmuted")

        # The server turns the header levels into active_speakers (nobody takes the mix here).
        msg = raw.wait_for(lambda m: m.get("type") == "active_speakers" and any(s["user_id"] == host_id for s in m["speakers"]),
                           since=unmuted, what="active_speakers with the host")
        level = next(s["level"] for s in msg["speakers"] if s["user_id"] == host_id)
        print(f"active_speakers: host at level {level}")
        assert abs(level - (127 - TONE_RFC6464)) <= 4, msg  # the tone's level, as 127 − RFC 6464
    finally:
        raw.close()

    # The listener page marks the host as speaking, with a strong ring (and the host page itself).
    mark = listener.locator(speaking_row(host_id))
    mark.wait_for(state="visible")
    # Title and strength read together: the ring is repainted four times a second, and two reads
    # could straddle a repaint.
    title, strength = mark.evaluate("(node) => [node.title, node.style.getPropertyValue('--strength')]")
    assert "speaking" in title, title
    assert float(strength) > 0.5, (title, strength)
    host.locator(speaking_row(host_id)).wait_for(state="visible")
    assert listener.locator("#participants tr[data-speaking]").count() == 1  # nobody else
    settled(listener)
    shot(listener, "listener-speaking")

    # Every Opus frame the host page sent carried its level: 0x80 | RFC 6464 of the tone.
    assert len(sent) >= 25, f"only {len(sent)} binary frames sent"
    assert all(b & 0x80 for b in sent), f"frames without a level byte: {[b for b in sent if not b & 0x80][:10]}"
    levels = [b & 0x7F for b in sent]
    print(f"host page sent {len(sent)} frames; levels median {statistics.median(levels)}, min {min(levels)}, max {max(levels)}")
    assert abs(statistics.median(levels) - TONE_RFC6464) <= 2, levels[:50]
    assert not [line for line in logs if "[pageerror]" in line], logs


def test_cohost_speaking_from_listener_page_is_shown_on_host_page(server, launch, shot):
    logs: list[str] = []
    host, host_id, event_id, _ = go_live(server, launch(tone_hz=HOST_HZ), logs)

    cohost_id = awtest.uid("cora")
    cohost = new_page(launch(tone_hz=COHOST_HZ), logs)
    cohost_sent = record_sent_levels(cohost)
    cohost.goto(url(server, "listen.html", event=event_id, user=cohost_id, name="Cora", token=awtest.token(cohost_id, "Cora"), processing="0"))
    invite = host.locator(f'tr[data-user="{cohost_id}"] button[data-action="invite"]')
    invite.wait_for()
    assert host.locator(f'#participants tr[data-user="{cohost_id}"][data-speaking]').count() == 0
    invite.click()
    cohost.wait_for_selector("#invite:not([hidden])")
    cohost.click("#accept")
    cohost.wait_for_function("window.airwave.role === 'cohost'")

    # The host page marks the co-host (and itself) as speaking; so does the co-host's own page.
    host.locator(speaking_row(cohost_id)).wait_for(state="visible")
    host.locator(speaking_row(host_id)).wait_for(state="visible")
    cohost.locator(speaking_row(cohost_id)).wait_for(state="visible")
    settled(host)
    shot(host, "host-speaking")
    assert cohost_sent and all(b & 0x80 for b in cohost_sent), cohost_sent[:10]

    # Muted by the host, the co-host is no longer marked; the host still is.
    host.click(f'tr[data-user="{cohost_id}"] button[data-action="mute"]')
    host.wait_for_selector(f'tr[data-user="{cohost_id}"] button[data-action="mute"]:has-text("Unmute")')
    host.wait_for_selector(f'#participants tr[data-user="{cohost_id}"]:not([data-speaking])')
    cohost.wait_for_selector(f'#participants tr[data-user="{cohost_id}"]:not([data-speaking])')
    assert host.locator(f'#participants tr[data-user="{cohost_id}"] .speaking').is_hidden()
    host.locator(speaking_row(host_id)).wait_for(state="visible")
    # Unmuted, it is marked again (the server lists it once its frames flow).
    host.click(f'tr[data-user="{cohost_id}"] button[data-action="mute"]')
    host.locator(speaking_row(cohost_id)).wait_for(state="visible")
    assert not [line for line in logs if "[pageerror]" in line], logs

