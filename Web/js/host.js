// Host page: goes live (PROTOCOL.md 2.1), sends the microphone as Opus, shares the screen as
// VP8, invites and removes co-hosts, mutes, chats and ends the event. Reconnects within the
// host grace period and resumes the same event.
import { AudioEngine, Microphone, SpeakerMix } from "./audio.js";
import { Connection } from "./connection.js";
import { decodeFrame, urls } from "./protocol.js";
import { Participants } from "./participants.js";
import { ScreenSender } from "./screen.js";
import { $, addChatLine, el, errorText, hideBanner, params, setStatus, showBanner, toast, wireChatForm } from "./ui.js";
import { loadIdentity, saveIdentity } from "./identity.js";

const me = loadIdentity();
$("#setup-user").textContent = me.user;
document.querySelectorAll(".setup-user").forEach((node) => (node.textContent = me.user));
$("#token").value = me.token;
if (params.get("processing") === "0") $("#processing").checked = false;

const engine = new AudioEngine();
const mix = new SpeakerMix(engine); // co-hosts' voices
let mic = null;
let screen = null;
let eventId = null;
let ended = false;
let muted = false;
const participants = new Participants();

const conn = new Connection({
  url: () => urls.host(me.user, me.token),
  resumable: () => !ended,
  retryFor: 30000, // the server's default host grace period
  onMessage: handle,
  onMedia: (data) => {
    const frame = decodeFrame(data);
    if (frame) mix.push(frame);
  },
  onState: (state, { info, delay }) => {
    if (state === "open") {
      setStatus("ok", "live");
      hideBanner();
      screen?.requestKeyframe(); // viewers may have missed frames while we were away
    } else if (state === "connecting") {
      setStatus("wait", "connecting…");
    } else if (state === "reconnecting") {
      participants.clearSpeakers(); // nobody's level is known until the server speaks again
      setStatus("wait", "reconnecting…");
      showBanner("wait", "Connection lost.", `Your event stays live for a while; reconnecting in ${Math.round(delay / 1000)} s…`);
    } else if (state === "closed") {
      stopMedia();
      participants.clearSpeakers();
      if (ended) return;
      setStatus("bad", info.title);
      // Back to the setup card: a fresh token can be pasted and the event started again.
      $("#go-live").disabled = false;
      $("#setup").hidden = false;
      $("#live").hidden = true;
      showBanner("bad", info.title, info.detail);
    }
  },
});

function handle(msg) {
  switch (msg.type) {
    case "stream_link":
      if (eventId && eventId !== msg.event_id) toast("Your earlier event had ended; this is a new event.");
      else if (msg.resumed) toast("Reconnected: your event continues.");
      eventId = msg.event_id;
      $("#event-id").textContent = eventId;
      $("#join-link").href = $("#join-link").textContent = `${location.origin}/listen.html?event=${encodeURIComponent(eventId)}`;
      setMode(msg.mode);
      $("#setup").hidden = true;
      $("#live").hidden = false;
      break;
    case "stream_state":
      setMode(msg.mode);
      break;
    case "chat_history":
      $("#chat").replaceChildren();
      msg.messages.forEach((m) => addChatLine($("#chat"), m, m.user_id === me.user));
      break;
    case "message_broadcast":
      addChatLine($("#chat"), msg, msg.user_id === me.user);
      break;
    case "participant_list":
      participants.update(msg.participants);
      renderParticipants();
      break;
    case "participant_count":
      $("#count").textContent = msg.count;
      break;
    case "active_speakers":
      participants.setSpeakers(msg.speakers);
      break;
    case "participant_joined":
    case "participant_left":
      toast(msg.message ?? `${msg.username} ${msg.type === "participant_joined" ? "joined" : "left"}`);
      break;
    case "cohost_joined":
      participants.noteSource(msg.user_id, msg.source_id);
      participants.setRole(msg.user_id, "cohost");
      renderParticipants();
      toast(msg.message ?? `${msg.username} is now a co-host`);
      break;
    case "cohost_left":
    case "cohost_removed": {
      const source = participants.sourceOf(msg.user_id);
      if (source !== undefined) mix.removeSource(source);
      participants.setRole(msg.user_id, "listener");
      renderParticipants();
      toast(msg.message ?? `${msg.username} is no longer a co-host`);
      break;
    }
    case "cohost_rejected":
      toast(`${msg.username} declined the invitation.`);
      break;
    case "muted":
    case "unmuted":
      participants.setMuted(msg.user_id, msg.type === "muted");
      renderParticipants();
      if (msg.user_id === me.user) setMuted(msg.type === "muted");
      break;
    case "stream_mode_changed":
      setMode(msg.mode);
      break;
    case "keyframe_request":
      screen?.requestKeyframe();
      break;
    case "stream_ended":
      ended = true;
      stopMedia();
      participants.clearSpeakers();
      setStatus("off", "ended");
      showBanner("info", "Event ended.", "Everyone has been disconnected.", { label: "Back to start", run: () => (location.href = "./") });
      break;
    case "server_shutdown":
      showBanner("bad", "Server shutting down.", msg.message ?? "");
      break;
    case "error":
      toast(errorText(msg), "bad");
      break;
  }
}

function setMode(mode) {
  $("#mode").textContent = mode === "screen" ? "screen sharing" : "audio";
  $("#screen").textContent = mode === "screen" ? "Back to audio" : "Share screen";
  document.body.dataset.mode = mode;
}

function setMuted(value) {
  muted = value;
  $("#mute").textContent = muted ? "Unmute" : "Mute";
  if (!mic) return;
  if (muted) mic.pause();
  else mic.start((frame) => conn.sendBinary(frame));
}

function renderParticipants() {
  participants.render($("#participants"), me.user, (p) => {
    if (p.role === "listener" && p.verified) {
      return [el("button", { class: "small", dataset: { action: "invite" }, onclick: () => conn.send({ type: "invite_cohost", user_id: p.user_id }) }, "Invite to speak")];
    }
    if (p.role === "cohost") {
      return [
        el("button", { class: "small", dataset: { action: "mute" }, onclick: () => conn.send({ type: p.muted ? "unmute" : "mute", user_id: p.user_id }) }, p.muted ? "Unmute" : "Mute"),
        el("button", { class: "small danger", dataset: { action: "remove" }, onclick: () => conn.send({ type: "remove_cohost", participant_id: p.user_id, username: p.username }) }, "Remove"),
      ];
    }
    return [];
  });
}

async function toggleScreen() {
  if (screen) {
    stopScreen();
    return;
  }
  const source = params.get("screen") === "canvas" ? "canvas" : "display";
  const sender = new ScreenSender({ source, onFrame: (frame) => conn.sendBinary(frame), onEnded: stopScreen });
  let fields;
  try {
    fields = await sender.start();
  } catch (error) {
    toast(`Screen capture is not available (${error.message}). Open this page with ?screen=canvas to share a test pattern.`, "bad");
    return;
  }
  screen = sender;
  conn.send({ type: "switching_to_screen_sharing", stream: "screen", ...fields });
  sender.run();
  const preview = sender.preview;
  preview.classList.add("screen");
  $("#preview").replaceChildren(preview);
  $("#preview-card").hidden = false;
}

function stopScreen() {
  if (!screen) return;
  screen.stop();
  screen = null;
  $("#preview").replaceChildren();
  $("#preview-card").hidden = true;
  conn.send({ type: "switching_to_audio", stream: "audio" });
}

function stopMedia() {
  mic?.stop();
  mic = null;
  screen?.stop();
  screen = null;
  mix.close();
}

$("#go-live").addEventListener("click", async () => {
  me.token = $("#token").value.trim();
  if (!me.token) return toast("Paste your host token first.", "bad");
  saveIdentity(me);
  $("#go-live").disabled = true;
  await engine.resume();
  mic = new Microphone(engine, { processing: $("#processing").checked });
  try {
    await mic.start((frame) => conn.sendBinary(frame));
  } catch (error) {
    toast(`No microphone: ${error.message}. You are live without sound.`, "bad");
    mic = null;
  }
  conn.connect();
});
$("#mute").addEventListener("click", () => conn.send({ type: muted ? "unmute" : "mute" }));
$("#screen").addEventListener("click", toggleScreen);
$("#end").addEventListener("click", () => {
  if (!confirm("End the event for everyone?")) return;
  conn.send({ type: "stream_ended", event_id: eventId });
});
wireChatForm($("#chat-form"), (text) => conn.send({ type: "broadcast_message", message: text }));

setInterval(() => {
  $("#mic-level").style.width = `${Math.min(100, (mic?.level ?? 0) * 300)}%`;
}, 100);

// For the browser tests and for poking around in the console.
window.airwave = { conn, mix, participants, get mic() { return mic; }, get screen() { return screen; }, get eventId() { return eventId; } };
