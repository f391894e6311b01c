// Listener page (PROTOCOL.md 2.2): plays every speaker, shows the screen share, chats, answers
// the host's invitation and, as a co-host, sends its microphone. A verified listener (with a
// token) reconnects by itself; an unverified one would be refused as a duplicate, so it asks.
import { AudioEngine, Microphone, SpeakerMix, StreamPlayer } from "./audio.js";
import { Connection } from "./connection.js";
import { Kind, decodeFrame, urls } from "./protocol.js";
import { Participants } from "./participants.js";
import { ScreenReceiver } from "./screen.js";
import { $, addChatLine, errorText, hideBanner, params, roleLabel, setStatus, showBanner, toast, wireChatForm } from "./ui.js";
import { loadIdentity } from "./identity.js";

const me = loadIdentity();
const eventId = params.get("event") ?? "";
if (!me.name) me.name = me.user;
$("#event-id").textContent = eventId;
$("#me").textContent = `${me.name}${me.token ? " (verified)" : ""}`;

const engine = new AudioEngine();
// Any player can play the event over plain HTTP (PROTOCOL.md 9); the link carries no token.
const playerPath = `listen/${encodeURIComponent(eventId)}`;
$("#player-link").href = playerPath;
$("#player-link").textContent = new URL(playerPath, location.href).href;
// Without WebCodecs the page plays that stream in an <audio> element (with the token, so the
// player and this page count as one listener); `?player=http` asks for it anyway.
const streamed = typeof AudioDecoder !== "function" || params.get("player") === "http";
const mix = streamed
  ? new StreamPlayer(engine, $("#stream-player"), me.token ? `${playerPath}?token=${encodeURIComponent(me.token)}` : playerPath)
  : new SpeakerMix(engine);
const participants = new Participants();
const screen = new ScreenReceiver($("#screen"), () => conn.send({ type: "keyframe_request" }));
let mic = null;
let role = "listener";
let muted = false;
let done = false;

const conn = new Connection({
  url: () => urls.join(eventId, me.user, me.name, me.token),
  resumable: () => Boolean(me.token) && !done,
  onMessage: handle,
  onMedia: (data) => {
    const frame = decodeFrame(data);
    if (!frame) return;
    if (frame.kind === Kind.screen) screen.push(frame);
    else mix.push(frame);
  },
  onState: (state, { info, delay }) => {
    if (state === "open") {
      setStatus("ok", "connected");
      hideBanner();
    } else if (state === "connecting") {
      setStatus("wait", "connecting…");
    } else if (state === "reconnecting") {
      participants.clearSpeakers(); // nobody's level is known until the server speaks again
      setStatus("wait", "reconnecting…");
      showBanner("wait", info.title, `Reconnecting in ${Math.round(delay / 1000)} s…`);
    } else if (state === "closed") {
      setRole("listener");
      mix.close();
      participants.clearSpeakers();
      if (done) return;
      setStatus("bad", info.title);
      const again = info.state === "lost" || info.state === "too_slow" || info.state === "shutdown" || info.state === "too_big";
      showBanner(info.state === "ended" ? "info" : "bad", info.title, info.detail,
        again ? { label: "Join again", run: () => conn.connect() } : { label: "Back to start", run: () => (location.href = "./") });
    }
  },
});

function handle(msg) {
  switch (msg.type) {
    case "stream_state":
      $("#host-name").textContent = `${msg.host?.username ?? "Host"} is live`;
      $("#title").textContent = `Listening to ${msg.host?.username ?? "the host"}`;
      setMode(msg.mode, msg.screen);
      break;
    case "chat_history":
      $("#chat").replaceChildren();
      msg.messages.forEach((m) => addChatLine($("#chat"), m, m.user_id === me.user));
      break;
    case "message_broadcast":
      addChatLine($("#chat"), msg, msg.user_id === me.user);
      break;
    case "participant_list": {
      participants.update(msg.participants);
      participants.render($("#participants"), me.user);
      const mine = participants.find(me.user);
      if (mine) {
        setRole(mine.role);
        setMuted(mine.muted);
      }
      break;
    }
    case "participant_count":
      $("#count").textContent = msg.count;
      break;
    case "active_speakers":
      participants.setSpeakers(msg.speakers);
      break;
    case "cohost_invite":
      $("#invite-text").textContent = msg.message ?? `${msg.from_user} invites you to speak.`;
      $("#invite").hidden = false;
      break;
    case "cohost_joined":
      participants.noteSource(msg.user_id, msg.source_id);
      participants.setRole(msg.user_id, "cohost");
      participants.render($("#participants"), me.user);
      if (msg.user_id === me.user) setRole("cohost");
      else toast(msg.message ?? `${msg.username} is now speaking`);
      break;
    case "cohost_left":
    case "cohost_removed": {
      const source = participants.sourceOf(msg.user_id);
      if (source !== undefined) mix.removeSource(source);
      participants.setRole(msg.user_id, "listener");
      participants.render($("#participants"), me.user);
      if (msg.user_id === me.user) {
        setRole("listener");
        toast(msg.type === "cohost_removed" ? "The host moved you back to the audience." : "You stopped speaking.");
      }
      break;
    }
    case "muted":
    case "unmuted":
      participants.setMuted(msg.user_id, msg.type === "muted");
      participants.render($("#participants"), me.user);
      if (msg.user_id === me.user) setMuted(msg.type === "muted");
      break;
    case "stream_mode_changed":
      setMode(msg.mode, msg);
      break;
    case "stream_ended":
      done = true;
      setRole("listener");
      mix.close();
      participants.clearSpeakers();
      screen.reset();
      setStatus("off", "ended");
      showBanner("info", "Event ended.", msg.message ?? "The host ended the event.", { label: "Back to start", run: () => (location.href = "./") });
      break;
    case "server_shutdown":
      showBanner("bad", "Server shutting down.", msg.message ?? "");
      break;
    case "error":
      if (msg.code === "no_pending_invite") $("#invite").hidden = true;
      toast(errorText(msg), "bad");
      break;
  }
}

function setMode(mode, fields) {
  $("#mode").textContent = mode === "screen" ? "screen sharing" : "audio";
  document.body.dataset.mode = mode;
  $("#screen-card").hidden = mode !== "screen";
  if (mode === "screen") screen.configure(fields ?? {});
  else screen.reset();
}

/** Starts or stops the microphone as the role changes. */
async function setRole(next) {
  if (next === role) return;
  role = next;
  $("#my-role").textContent = roleLabel[role] ?? role;
  $("#my-role").className = `badge ${role}`;
  const speaking = role === "cohost";
  $("#mute").hidden = $("#step-down").hidden = !speaking;
  if (speaking) {
    mic ??= new Microphone(engine, { processing: params.get("processing") !== "0" });
    try {
      await mic.start((frame) => conn.sendBinary(frame));
      if (muted) mic.pause();
    } catch (error) {
      toast(`No microphone: ${error.message}`, "bad");
    }
  } else if (mic) {
    mic.stop();
    mic = null;
  }
}

function setMuted(value) {
  if (value === muted) return;
  muted = value;
  $("#mute").textContent = muted ? "Unmute" : "Mute";
  if (!mic) return;
  if (muted) mic.pause();
  else mic.start((frame) => conn.sendBinary(frame));
}

$("#accept").addEventListener("click", () => {
  $("#invite").hidden = true;
  engine.resume();
  conn.send({ type: "accept_cohost" });
});
$("#reject").addEventListener("click", () => {
  $("#invite").hidden = true;
  conn.send({ type: "cohost_reject" });
});
$("#mute").addEventListener("click", () => conn.send({ type: muted ? "unmute" : "mute" }));
$("#step-down").addEventListener("click", () => conn.send({ type: "cohost_leave", participant_id: me.user }));
$("#leave").addEventListener("click", () => {
  done = true;
  conn.send({ type: "leave_room" });
  conn.close();
  mic?.stop();
  mix.close();
  setStatus("off", "left");
  showBanner("info", "You left.", "", { label: "Back to start", run: () => (location.href = "./") });
});
$("#unblock").addEventListener("click", () => {
  engine.resume();
  if (streamed) mix.play();
});
wireChatForm($("#chat-form"), (text) => conn.send({ type: "broadcast_message", message: text }));

setInterval(() => {
  $("#unblock").hidden = !engine.blocked;
  if (mix.analyser) {
    const data = new Float32Array(mix.analyser.fftSize);
    mix.analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (let i = 0; i < data.length; i += 16) peak = Math.max(peak, Math.abs(data[i]));
    $("#out-level").style.width = `${Math.min(100, peak * 120)}%`;
  }
}, 100);

if (!eventId) showBanner("bad", "No event.", "Open this page from the start page or with ?event=ID.", { label: "Back to start", run: () => (location.href = "./") });
else conn.connect();

// For the browser tests and for poking around in the console.
window.airwave = { conn, mix, screen, participants, streamed, get mic() { return mic; }, get role() { return role; } };
