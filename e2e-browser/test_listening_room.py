"""A listening room in real Chromium: two members see each other's songs and votes, the
playback one of them starts, moves and pauses is mirrored on the other page, and chat flows."""

from __future__ import annotations

from conftest import awtest, new_page


def test_queue_votes_and_playback_reach_the_other_page(server, launch, shot):
    logs: list[str] = []
    browser = launch()
    room = awtest.uid("room")
    ann = new_page(browser, logs)
    ben = new_page(browser, logs)
    ann.goto(f"{server.http}/room.html?room={room}&name=Ann")
    ben.goto(f"{server.http}/room.html?room={room}&name=Ben")
    for page in (ann, ben):
        page.wait_for_function("window.airwave.room.myId !== null")

    # Ann queues two songs (each with her vote); Ben votes for the second, which goes on top.
    for song in ("track-1", "track-2"):
        ann.fill("#add-form input[name=song]", song)
        ann.click("#add-form button")
    ben.wait_for_selector('#queue li[data-song="track-2"]')
    ben.click('#queue li[data-song="track-2"] button')
    for page in (ann, ben):
        page.wait_for_selector('#queue li[data-song="track-2"] .votes[data-votes="2"]')
        assert page.get_attribute("#queue li:first-child", "data-song") == "track-2"
    assert ben.is_disabled('#queue li[data-song="track-2"] button')

    # Ann presses Play: the top song plays for both, from 0.
    ann.click("#play")
    for page in (ann, ben):
        page.wait_for_function("document.body.dataset.playback === 'playing' && window.airwave.room.current === 'track-2'")
    assert ben.text_content("#current") == "track-2"
    assert ben.get_attribute("#queue li:first-child", "data-song") == "track-1"

    # Ann moves to the middle and pauses: Ben's page follows to the same position.
    ann.eval_on_selector("#seek", "el => { el.value = 50; el.dispatchEvent(new Event('change')); }")
    ben.wait_for_function("window.airwave.position() >= 89000 && window.airwave.position() < 100000")
    ann.click("#play")  # pause
    ben.wait_for_function("document.body.dataset.playback === 'paused'")
    ann.wait_for_function("document.body.dataset.playback === 'paused'")
    assert abs(ben.evaluate("window.airwave.position()") - ann.evaluate("window.airwave.position()")) < 50

    # Chat.
    ben.fill("#chat-form input", "great pick")
    ben.click("#chat-form button")
    ann.wait_for_selector("#chat li:has-text('great pick')")

    # A member who arrives later gets the whole state: queue, song, paused position.
    cy = new_page(browser, logs)
    cy.goto(f"{server.http}/room.html?room={room}&name=Cy")
    cy.wait_for_function("window.airwave.room.current === 'track-2' && document.body.dataset.playback === 'paused'")
    assert abs(cy.evaluate("window.airwave.position()") - ann.evaluate("window.airwave.position()")) < 50
    cy.wait_for_selector("#chat li:has-text('great pick')")
    shot(ben, "room")
    assert not [line for line in logs if "[pageerror]" in line], logs
