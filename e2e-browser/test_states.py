"""Every page shows a clear state for errors and close codes, and reconnects where the protocol
allows resuming."""

from __future__ import annotations

from conftest import awtest, new_page


def test_expired_host_token_is_explained(server, launch, shot):
    browser = launch()
    page = new_page(browser)
    host_id = awtest.uid("host")
    page.goto(f"{server.http}/host.html?user={host_id}&token={awtest.expired_token(host_id)}")
    page.click("#go-live")
    page.wait_for_selector("#banner:has-text('Token expired')")
    assert page.text_content("#status") == "Token expired"
    assert "airwave token" in page.text_content("#banner")
    # A fresh token can be pasted and the page goes live without a reload.
    page.fill("#token", awtest.token(host_id))
    page.click("#go-live")
    page.wait_for_function("window.airwave.eventId && document.querySelector('#status').textContent === 'live'")
    assert page.locator("#banner").is_hidden()
    shot(page, "host-token-expired")


def test_host_resumes_after_a_dropped_connection(server, launch):
    browser = launch(tone_hz=440)
    page = new_page(browser)
    host_id = awtest.uid("host")
    page.goto(f"{server.http}/host.html?user={host_id}&token={awtest.token(host_id)}&processing=0")
    page.click("#go-live")
    page.wait_for_function("window.airwave.eventId")
    event_id = page.evaluate("window.airwave.eventId")
    # Drop the socket as a network failure would (code 1006, no stream_ended): the page reconnects
    # within the grace period and the server hands back the same event.
    page.evaluate("window.airwave.conn.simulateDrop()")
    page.wait_for_selector("#toasts :text('Reconnected: your event continues.')")
    page.wait_for_function("document.querySelector('#status').textContent === 'live'")
    assert page.evaluate("window.airwave.eventId") == event_id


def test_verified_listener_replaced_by_a_second_tab(server, launch):
    browser = launch(tone_hz=440)
    host = new_page(browser)
    host_id = awtest.uid("host")
    host.goto(f"{server.http}/host.html?user={host_id}&token={awtest.token(host_id)}")
    host.click("#go-live")
    host.wait_for_function("window.airwave.eventId")
    event_id = host.evaluate("window.airwave.eventId")
    user = awtest.uid("lis")
    address = f"{server.http}/listen.html?event={event_id}&user={user}&name=Lee&token={awtest.token(user)}"
    first = new_page(browser)
    first.goto(address)
    first.wait_for_function("document.querySelector('#status').textContent === 'connected'")
    second = new_page(browser)
    second.goto(address)
    first.wait_for_selector("#banner:has-text('Opened elsewhere')")
    second.wait_for_function("document.querySelector('#status').textContent === 'connected'")
    # The replaced page does not fight back: it stays closed.
    assert first.text_content("#status") == "Opened elsewhere"


def test_server_shutdown_is_shown(start_server, launch, shot):
    srv = start_server()
    browser = launch()
    page = new_page(browser)
    page.goto(f"{srv.http}/room.html?room=quiet&name=Ann")
    page.wait_for_function("document.querySelector('#status').textContent === 'connected'")
    assert srv.terminate() == 0
    page.wait_for_selector("#banner:has-text('Server shutting down')")
    assert page.text_content("#status") == "Server shutting down"
