"""A live event in real Chromium: the host page goes live with a 440 Hz microphone, a listener
hears it, the host invites a second (verified) listener whose 660 Hz microphone then reaches
the first listener, the host removes it and its audio stops; the host shares its screen and a
late joiner's canvas shows the picture; the host ends the event."""

from __future__ import annotations

import urllib.parse

from conftest import awtest, new_page

HOST_HZ = 440
COHOST_HZ = 660


def url(server, page, **query):
    return f"{server.http}/{page}?{urllib.parse.urlencode(query)}"


def peak(page, lo, hi):
    return page.evaluate(f"window.airwave.mix.peak({lo}, {hi})")


def wait_for_tone(page, hz, timeout=20000):
    """Until the page plays a clear peak within 2 % of hz (AnalyserNode on its output)."""
    page.wait_for_function(
        """([hz]) => {
            const mix = window.airwave && window.airwave.mix;
            if (!mix || !mix.analyser) return false;
            const p = mix.peak(hz * 0.8, hz * 1.2);
            return p.level > -50 && Math.abs(p.frequency - hz) <= hz * 0.02;
        }""", arg=[hz], timeout=timeout)


def test_host_listener_cohost_and_screen(server, launch, shot):
    logs: list[str] = []
    host_browser = launch(tone_hz=HOST_HZ)
    cohost_browser = launch(tone_hz=COHOST_HZ)
    listener_browser = launch()

    # The host goes live.
    host_id = awtest.uid("host")
    host = new_page(host_browser, logs)
    host.goto(url(server, "host.html", user=host_id, name="Hana", token=awtest.token(host_id, "Hana"), processing="0"))
    shot(host, "host-setup")
    host.click("#go-live")
    host.wait_for_function("window.airwave.eventId")
    event_id = host.evaluate("window.airwave.eventId")
    assert host.text_content("#status") == "live"

    # The start page lists the event live; its Join button opens the listener page.
    start = new_page(listener_browser, logs)
    start.goto(f"{server.http}/")
    start.wait_for_selector(f'#streams li[data-event="{event_id}"]')
    start.fill("#name", "Lena")
    start.fill("#user", "lena-1")
    shot(start, "start")
    start.click(f'#streams li[data-event="{event_id}"] button')
    start.wait_for_url("**/listen.html?**")
    listener = start
    wait_for_tone(listener, HOST_HZ)
    heard = peak(listener, 300, 600)
    assert abs(heard["frequency"] - HOST_HZ) <= HOST_HZ * 0.02, heard
    print(f"listener hears the host: {heard['frequency']:.1f} Hz at {heard['level']:.1f} dB")

    # A verified listener joins; the host invites it; it accepts in the modal.
    cohost_id = awtest.uid("cora")
    cohost = new_page(cohost_browser, logs)
    cohost.goto(url(server, "listen.html", event=event_id, user=cohost_id, name="Cora", token=awtest.token(cohost_id, "Cora"), processing="0"))
    invite = host.locator(f'tr[data-user="{cohost_id}"] button[data-action="invite"]')
    invite.wait_for()
    invite.click()
    cohost.wait_for_selector("#invite:not([hidden])")
    shot(cohost, "listener-invite")
    cohost.click("#accept")
    cohost.wait_for_function("window.airwave.role === 'cohost'")
    host.wait_for_selector(f'tr[data-user="{cohost_id}"][data-role="cohost"]')

    # Its microphone reaches the other listener (and the host), next to the host's tone.
    wait_for_tone(listener, COHOST_HZ)
    wait_for_tone(host, COHOST_HZ)
    cohost_heard = peak(listener, 600, 720)
    print(f"listener hears the co-host: {cohost_heard['frequency']:.1f} Hz at {cohost_heard['level']:.1f} dB")
    assert abs(peak(listener, 300, 550)["frequency"] - HOST_HZ) <= HOST_HZ * 0.02
    # Chat goes both ways.
    listener.fill("#chat-form input", "hello from Lena")
    listener.click("#chat-form button")
    host.wait_for_selector("#chat li:has-text('hello from Lena')")
    host.fill("#chat-form input", "welcome, Cora is speaking now")
    host.click("#chat-form button")
    listener.wait_for_selector("#chat li:has-text('welcome, Cora')")
    cohost.wait_for_selector("#chat li:has-text('welcome, Cora')")
    cohost_source = listener.evaluate(f"window.airwave.participants.sourceOf({cohost_id!r})")
    assert cohost_source and cohost_source != 1
    shot(listener, "listener")
    shot(host, "host")

    # The host mutes it: the server stops its audio; unmuted, it is back.
    host.click(f'tr[data-user="{cohost_id}"] button[data-action="mute"]')
    listener.wait_for_function(f"window.airwave.mix.levelAt({COHOST_HZ}) < -90")
    cohost.wait_for_selector("#mute:has-text('Unmute')")
    host.wait_for_selector(f'tr[data-user="{cohost_id}"] button[data-action="mute"]:has-text("Unmute")')
    host.click(f'tr[data-user="{cohost_id}"] button[data-action="mute"]')
    wait_for_tone(listener, COHOST_HZ)

    # The host removes it: its audio stops for everyone, its microphone is released.
    host.click(f'tr[data-user="{cohost_id}"] button[data-action="remove"]')
    cohost.wait_for_function("window.airwave.role === 'listener' && window.airwave.mic === null")
    listener.wait_for_function(f"window.airwave.mix.levelAt({COHOST_HZ}) < -90")
    frames_after_removal = listener.evaluate(f"window.airwave.mix.framesBySource.get({cohost_source})")
    listener.wait_for_timeout(1000)  # absence of frames can only be observed over time
    assert listener.evaluate(f"window.airwave.mix.framesBySource.get({cohost_source})") == frames_after_removal
    wait_for_tone(listener, HOST_HZ)  # the host still comes through

    # Screen sharing (getDisplayMedia, VP8); a listener who joins late sees the picture.
    host.click("#screen")
    host.wait_for_function("document.body.dataset.mode === 'screen'")
    late = new_page(listener_browser, logs)
    late.goto(url(server, "listen.html", event=event_id, user="late-1", name="Lars"))
    late.wait_for_function("window.airwave.screen.framesDrawn > 5 && window.airwave.screen.litFraction() > 0.5")
    shot(late, "listener-screen")
    shot(host, "host-screen")
    wait_for_tone(late, HOST_HZ)  # audio keeps flowing in screen mode

    # Back to audio: the canvas goes away.
    host.click("#screen")
    late.wait_for_function("document.body.dataset.mode === 'audio'")
    assert late.locator("#screen-card").is_hidden()

    # A listener leaves: the host's count goes down.
    count = int(host.text_content("#count"))
    late.click("#leave")
    late.wait_for_selector("#banner:has-text('You left')")
    host.wait_for_function(f"Number(document.querySelector('#count').textContent) === {count - 1}")

    # The host ends the event: every page says so; a new join gets the ended state (4410).
    host.on("dialog", lambda dialog: dialog.accept())
    host.click("#end")
    for page in (listener, cohost):
        page.wait_for_selector("#banner:has-text('Event ended')")
    host.wait_for_selector("#banner:has-text('Event ended')")
    again = new_page(listener_browser, logs)
    again.goto(url(server, "listen.html", event=event_id, user="late-2"))
    again.wait_for_selector("#banner:has-text('Event ended')")
    assert again.text_content("#status") == "Event ended"
    shot(again, "listener-ended")
    assert not [line for line in logs if "[pageerror]" in line], logs
