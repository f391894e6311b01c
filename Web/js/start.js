// Start page: the active streams directory (live), joining, going live, opening a room.
import { Connection } from "./connection.js";
import { isValidId, urls } from "./protocol.js";
import { $, el, setStatus, showBanner, hideBanner, toast } from "./ui.js";
import { loadIdentity, saveIdentity } from "./identity.js";

const identity = loadIdentity();
$("#name").value = identity.name;
$("#user").value = identity.user;
$("#token").value = identity.token;

/** Reads and checks the "You" card; remembers it for the other pages. */
function currentIdentity() {
  const name = $("#name").value.trim();
  const user = $("#user").value.trim();
  const token = $("#token").value.trim();
  if (!isValidId(user)) {
    toast("User id: 1–64 characters of letters, digits, _ . @ -", "bad");
    return null;
  }
  saveIdentity({ name, user, token });
  return { name, user, token };
}

function go(page, query) {
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v));
  location.href = `${page}?${search}`;
}

function join(eventId) {
  const me = currentIdentity();
  if (me) go("listen.html", { event: eventId, user: me.user, name: me.name });
}

$("#join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  join(event.target.elements.event.value.trim());
});

$("#room-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const me = currentIdentity();
  if (me) go("room.html", { room: event.target.elements.room.value.trim(), name: me.name || me.user });
});

$("#go-live").addEventListener("click", () => {
  const me = currentIdentity();
  if (!me) return;
  if (!me.token) return toast("Going live needs a token: paste one under “Token”.", "bad");
  go("host.html", { user: me.user, name: me.name });
});

function renderStreams(streams) {
  const list = $("#streams");
  list.replaceChildren(
    ...streams.map((stream) =>
      el("li", { dataset: { event: stream.event_id } },
        el("div", { class: "info" },
          el("strong", {}, stream.host_username || stream.host_user_id),
          el("span", { class: "muted" }, ` · ${stream.mode === "screen" ? "sharing a screen" : "audio"} · ${stream.total_participants} listening`),
          el("div", { class: "small muted mono" }, `${stream.event_id} · since ${new Date(stream.start_timestamp).toLocaleTimeString()}`)),
        el("button", { class: "primary", onclick: () => join(stream.event_id) }, "Join"))));
  $("#no-streams").hidden = streams.length > 0;
}

const directory = new Connection({
  url: urls.directory,
  resumable: () => true,
  retryFor: Infinity,
  onMessage: (msg) => {
    if (msg.type === "active_streams") renderStreams(msg.streams);
  },
  onState: (state, { info, delay }) => {
    if (state === "open") {
      setStatus("ok", "live list connected");
      hideBanner();
    } else if (state === "reconnecting") {
      setStatus("wait", "reconnecting…");
      showBanner("wait", info.title, `Retrying in ${Math.round(delay / 1000)} s.`);
    } else if (state === "closed") {
      setStatus("bad", info.title);
      showBanner("bad", info.title, info.detail, { label: "Reconnect", run: () => directory.connect() });
    }
  },
});
directory.connect();
