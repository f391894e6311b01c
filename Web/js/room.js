// Listening room page (PROTOCOL.md 3): the queue with votes, adding songs, chat, and the
// playback the host controls, mirrored for everyone (position = song_progress + now − at).
import { Connection } from "./connection.js";
import { urls } from "./protocol.js";
import { $, addChatLine, el, errorText, hideBanner, params, setStatus, showBanner, toast, wireChatForm } from "./ui.js";
import { loadIdentity } from "./identity.js";

const DEFAULT_LENGTH = 180000; // songs are ids only; a song without a length plays for 3 minutes

const me = loadIdentity();
const roomId = params.get("room") ?? "";
const name = params.get("name") ?? (me.name || me.user);
$("#title").textContent = `Listening room ${roomId}`;

const room = { host: null, queue: [], current: null, playback: null, myId: null };
let closed = false;
let lastPlaybackByMe = false;
// Guests get their user id from the server; our own relayed user_joined (tagged with this
// nonce, an extra field the server relays untouched) tells us which id is ours.
const nonce = crypto.getRandomValues(new Uint32Array(2)).join("-");

const conn = new Connection({
  url: () => urls.room(roomId, name, me.token),
  resumable: () => !closed,
  retryFor: Infinity,
  onMessage: handle,
  onState: (state, { info, delay }) => {
    if (state === "open") {
      setStatus("ok", "connected");
      hideBanner();
      conn.send({ type: "user_joined", client_nonce: nonce });
    } else if (state === "connecting") {
      setStatus("wait", "connecting…");
    } else if (state === "reconnecting") {
      setStatus("wait", "reconnecting…");
      showBanner("wait", info.title, `Reconnecting in ${Math.round(delay / 1000)} s…`);
    } else if (state === "closed" && !closed) {
      setStatus("bad", info.title);
      showBanner("bad", info.title, info.detail, { label: "Reconnect", run: () => conn.connect() });
    }
  },
});

function handle(msg) {
  switch (msg.type) {
    case "room_state":
      room.host = msg.host;
      room.queue = msg.queue;
      room.current = msg.current_song?.song_id ?? null;
      room.playback = msg.playback;
      $("#chat").replaceChildren();
      (msg.chat_history ?? []).forEach((m) => addChatLine($("#chat"), m));
      $("#host-note").textContent = room.host
        ? `Only the room's host (${room.host.user_id}) controls the playback.`
        : "This room has no host: anyone may control the playback.";
      render();
      break;
    case "song_queued":
    case "autoplay_song_queued":
    case "song_vote":
      upsertSong(msg);
      if (msg.user_id === room.myId && msg.type !== "autoplay_song_queued") markVoted(msg.song_id);
      render();
      break;
    case "song_changed":
      room.current = msg.song_id ?? null;
      room.queue = room.queue.filter((s) => s.song_id !== room.current);
      room.playback = room.current ? { percentage: 0, song_progress: 0, song_length: DEFAULT_LENGTH, paused: false, at: Date.now() } : null;
      // Whoever changed the song starts its playback for everyone (and for the stored state).
      if (msg.user_id === room.myId && room.current) sendPlayback({ song_progress: 0, paused: false });
      render();
      break;
    case "playback_changed":
      room.playback = { ...(room.playback ?? {}), ...pick(msg, ["percentage", "paused", "song_progress", "song_length", "at"]) };
      lastPlaybackByMe = msg.user_id === room.myId;
      render();
      break;
    case "chat_message":
      addChatLine($("#chat"), msg, msg.user_id === room.myId);
      break;
    case "user_joined":
      if (msg.client_nonce === nonce) {
        room.myId = msg.user_id;
        break;
      }
      // The protocol's catch-up: whoever drives the playback tells the newcomer where it is.
      if (lastPlaybackByMe && room.playback) sendPlayback({});
      break;
    case "room_closed":
      closed = true;
      setStatus("off", "closed");
      showBanner("info", "Room closed.", "The host closed this room.", { label: "Back to start", run: () => (location.href = "./") });
      break;
    case "server_shutdown":
      showBanner("bad", "Server shutting down.", msg.message ?? "");
      break;
    case "error":
      toast(errorText(msg), "bad");
      break;
  }
}

/** Songs this member has voted for (the server allows one vote per song). */
const voted = new Set();
function markVoted(songId) {
  voted.add(songId);
}

function pick(object, keys) {
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined && object[k] !== null).map((k) => [k, object[k]]));
}

function upsertSong({ song_id, votes, time_added }) {
  const existing = room.queue.find((s) => s.song_id === song_id);
  if (existing) Object.assign(existing, { votes: votes ?? existing.votes });
  else room.queue.push({ song_id, votes: votes ?? 0, time_added: time_added ?? Date.now() });
  room.queue.sort((a, b) => b.votes - a.votes || a.time_added - b.time_added || (a.song_id < b.song_id ? -1 : 1));
}

/** Where the song is now, in ms. */
function position() {
  const p = room.playback;
  if (!p) return 0;
  const length = p.song_length || DEFAULT_LENGTH;
  const base = p.song_progress ?? ((p.percentage ?? 0) / 100) * length;
  const now = p.paused ? base : base + (Date.now() - (p.at ?? Date.now()));
  return Math.max(0, Math.min(length, now));
}

const clock = (ms) => `${Math.floor(ms / 60000)}:${String(Math.floor((ms % 60000) / 1000)).padStart(2, "0")}`;

function render() {
  $("#current").textContent = room.current ?? "nothing yet";
  $("#queue").replaceChildren(
    ...room.queue.map((song) =>
      el("li", { dataset: { song: song.song_id } },
        el("span", { class: "votes", dataset: { votes: song.votes } }, `▲ ${song.votes}`),
        el("span", { class: "song" }, song.song_id),
        el("button", { class: "small", disabled: voted.has(song.song_id), onclick: () => conn.send({ type: "song_vote", song_id: song.song_id }) }, voted.has(song.song_id) ? "Voted" : "Vote"))));
  $("#empty-queue").hidden = room.queue.length > 0;
  tick();
}

function tick() {
  const p = room.playback;
  const length = p?.song_length || DEFAULT_LENGTH;
  const at = position();
  $("#progress").style.width = `${p ? (at / length) * 100 : 0}%`;
  $("#position").textContent = clock(at);
  $("#length").textContent = clock(p ? length : 0);
  const playing = p && !p.paused && room.current;
  $("#play-state").textContent = !p ? "stopped" : p.paused ? "paused" : "playing";
  $("#play").textContent = playing ? "Pause" : "Play";
  document.body.dataset.playback = !p ? "stopped" : p.paused ? "paused" : "playing";
  if (document.activeElement !== $("#seek")) $("#seek").value = p ? Math.round((at / length) * 100) : 0;
}
setInterval(tick, 250);

function sendPlayback(change) {
  const length = room.playback?.song_length || DEFAULT_LENGTH;
  const progress = change.song_progress ?? Math.round(position());
  conn.send({
    type: "playback_changed",
    song_progress: progress,
    song_length: length,
    percentage: Math.round((progress / length) * 1000) / 10,
    paused: change.paused ?? room.playback?.paused ?? false,
  });
}

$("#play").addEventListener("click", () => {
  if (!room.current) {
    if (!room.queue.length) return toast("Add a song to the queue first.");
    conn.send({ type: "song_changed" }); // plays the top of the queue
    return;
  }
  const playing = Boolean(room.playback && !room.playback.paused);
  sendPlayback({ paused: playing });
});
$("#seek").addEventListener("change", (event) => {
  const length = room.playback?.song_length || DEFAULT_LENGTH;
  sendPlayback({ song_progress: Math.round((Number(event.target.value) / 100) * length) });
});
$("#next").addEventListener("click", () => conn.send({ type: "song_changed" }));
$("#add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.song;
  const songId = input.value.trim();
  if (!songId) return;
  conn.send({ type: "song_queued", song_id: songId });
  input.value = "";
});
wireChatForm($("#chat-form"), (text) => conn.send({ type: "chat_message", name, message: text }));

if (!roomId) showBanner("bad", "No room.", "Open this page from the start page or with ?room=ID.");
else conn.connect();

window.airwave = { conn, room, position };
