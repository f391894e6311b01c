"""Listening over plain HTTP in real Chromium (PROTOCOL.md 9): the listener page's `<audio>`
fallback plays `GET /listen/{id}` (forced with `?player=http`, as a browser without WebCodecs
gets it) and the host's 440 Hz tone shows at an AnalyserNode; the page links the stream for
other players. The HLS playlist plays through Media Source Extensions: `init.mp4` and the
fragmented MP4 segments appended to a SourceBuffer of type `audio/mp4; codecs="opus"`, the tone
measured at an AnalyserNode. (Debian's Chromium 156 answers `canPlayType` "maybe" for HLS, but
its own HLS player stops on these playlists with DEMUXER_ERROR_COULD_NOT_PARSE, while its MSE
plays the very same segments; `HLS_PLAYER` with "native" shows it.)"""

from __future__ import annotations

import urllib.parse

from conftest import awtest, new_page
from test_live_event import HOST_HZ, wait_for_tone

# Plays the event's HLS playlist through MSE in the page and measures it with an AnalyserNode:
# window.hls = {way, appended, analyser, peak(lo, hi)}.
HLS_PLAYER = """async ([base, way]) => {
    const audio = document.createElement("audio");
    document.body.append(audio);
    const type = 'audio/mp4; codecs="opus"';
    const state = { native: audio.canPlayType("application/vnd.apple.mpegurl"), mse: MediaSource.isTypeSupported(type), appended: [] };
    window.hls = state;
    const context = new AudioContext({ sampleRate: 48000 });
    state.analyser = context.createAnalyser();
    state.analyser.fftSize = 16384;
    state.analyser.smoothingTimeConstant = 0;
    context.createMediaElementSource(audio).connect(state.analyser);
    state.analyser.connect(context.destination);
    state.audio = audio;
    state.peak = (lo, hi) => {
        const bins = new Float32Array(state.analyser.frequencyBinCount);
        state.analyser.getFloatFrequencyData(bins);
        const hz = context.sampleRate / state.analyser.fftSize;
        let best = -Infinity, index = 0;
        for (let i = Math.ceil(lo / hz); i <= Math.floor(hi / hz); i++) if (bins[i] > best) [best, index] = [bins[i], i];
        return { frequency: index * hz, level: best };
    };
    if (way === "native") {
        audio.src = `${base}/index.m3u8`;
        await audio.play();
        state.appended.push("native");
        return { native: state.native, mse: state.mse };
    }
    const source = new MediaSource();
    audio.src = URL.createObjectURL(source);
    await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
    const buffer = source.addSourceBuffer(type);
    const append = async (bytes) => {
        buffer.appendBuffer(bytes);
        await new Promise((resolve) => buffer.addEventListener("updateend", resolve, { once: true }));
    };
    await append(await (await fetch(`${base}/init.mp4`)).arrayBuffer());
    const poll = async () => {
        const text = await (await fetch(`${base}/index.m3u8`)).text();
        for (const name of text.split("\\n").filter((line) => line.endsWith(".m4s"))) {
            if (state.appended.includes(name)) continue;
            await append(await (await fetch(`${base}/${name}`)).arrayBuffer());
            state.appended.push(name);
        }
        if (audio.paused && buffer.buffered.length) {
            audio.currentTime = buffer.buffered.start(0);
            audio.play().catch(() => {});
        }
    };
    await poll();
    state.timer = setInterval(poll, 1000);
    return { native: state.native, mse: state.mse };
}"""


def test_listener_page_plays_the_http_stream_and_hls_through_mse(server, launch, shot):
    logs: list[str] = []
    host_browser = launch(tone_hz=HOST_HZ)
    listener_browser = launch()

    host_id = awtest.uid("host")
    host = new_page(host_browser, logs)
    host.goto(f"{server.http}/host.html?" + urllib.parse.urlencode(
        {"user": host_id, "name": "Hana", "token": awtest.token(host_id, "Hana"), "processing": "0"}))
    host.click("#go-live")
    host.wait_for_function("window.airwave.eventId")
    event_id = host.evaluate("window.airwave.eventId")

    # The listener page in its <audio> fallback: the tone comes through GET /listen/.
    listener = new_page(listener_browser, logs)
    listener.goto(f"{server.http}/listen.html?" + urllib.parse.urlencode(
        {"event": event_id, "user": "lena-1", "name": "Lena", "player": "http"}))
    assert listener.evaluate("window.airwave.streamed") is True
    wait_for_tone(listener, HOST_HZ)
    element = listener.evaluate("(() => { const a = window.airwave.mix.element; return {src: a.currentSrc, paused: a.paused}; })()")
    assert element["src"].endswith(f"/listen/{event_id}") and not element["paused"], element
    link = listener.get_attribute("#player-link", "href")
    assert link == f"listen/{event_id}", link
    assert listener.text_content("#player-link") == f"{server.http}/listen/{event_id}"
    # The page's WebSocket and its player are one listener each: the count says 2 (no token here).
    listener.wait_for_function("document.querySelector('#count').textContent === '2'")
    shot(listener, "listen-http-fallback")

    # HLS in the same browser, through MSE fed with init.mp4 and the fMP4 segments.
    for way in ("mse",):
        page = new_page(listener_browser, logs)
        page.goto(f"{server.http}/")
        how = page.evaluate(HLS_PLAYER, [f"/hls/{event_id}", way])
        assert how["mse"] is True, how
        try:
            page.wait_for_function(
                """([hz]) => {
                    const p = window.hls && window.hls.appended.length && window.hls.peak(hz * 0.8, hz * 1.2);
                    return p && p.level > -50 && Math.abs(p.frequency - hz) <= hz * 0.02;
                }""", arg=[HOST_HZ], timeout=20000)
        except Exception:
            state = page.evaluate("""(() => { const a = window.hls.audio; return {way: %r, error: a.error && a.error.code,
                message: a.error && a.error.message, ready: a.readyState, time: a.currentTime, paused: a.paused,
                appended: window.hls.appended, peak: window.hls.peak(300, 600)}; })()""" % way)
            raise AssertionError(f"no tone through HLS ({way}): {state}")
        print(f"\nHLS in Chromium ({way}): the tone at {HOST_HZ} Hz; canPlayType(HLS) = {how['native']!r}")
        page.close()

    host.once("dialog", lambda dialog: dialog.accept())
    host.click("#end")
    listener.wait_for_function("window.airwave.mix.element.ended || window.airwave.mix.element.paused", timeout=15000)
    assert not [line for line in logs if "error" in line.lower() and "favicon" not in line], logs
