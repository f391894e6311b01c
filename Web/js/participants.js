// The participant list of a live event as the server last sent it (participant_list), plus
// the source id of each speaker so a page can stop a speaker's audio the moment it is demoted,
// and who is speaking now (active_speakers) shown as a ring beside the name.
import { el, roleLabel } from "./ui.js";

/** How strongly the ring shows for an active_speakers level (127 loudest … 20, the server's floor). */
export const speakingStrength = (level) => Math.min(1, Math.max(0.15, (level - 47) / 70)); // −80 … −10 dBov

export class Participants {
  constructor() {
    this.list = [];
    this.sourceByUser = new Map();
    this.speaking = new Map(); // user id → level, as the server's last active_speakers has it
    this.stopped = new Set(); // users stopped since (muted, demoted, left): not shown
    this.tbody = null;
  }

  /** participant_list */
  update(participants) {
    this.list = participants;
    for (const p of participants) if (p.source_id != null) this.sourceByUser.set(p.user_id, p.source_id);
  }

  /** cohost_joined carries the co-host's source id. */
  noteSource(userId, sourceId) {
    if (sourceId != null) this.sourceByUser.set(userId, sourceId);
  }

  sourceOf(userId) {
    return this.sourceByUser.get(userId);
  }

  find(userId) {
    return this.list.find((p) => p.user_id === userId);
  }

  /** Marks a user's role at once (the next coalesced list confirms it). */
  setRole(userId, role) {
    const p = this.find(userId);
    if (p) p.role = role;
    if (role === "listener") this.stopSpeaking(userId);
    else this.mayResumeSpeaking(userId);
  }

  setMuted(userId, muted) {
    const p = this.find(userId);
    if (p) p.muted = muted;
    if (muted) this.stopSpeaking(userId);
    else this.mayResumeSpeaking(userId);
  }

  /**
   * active_speakers: exactly these users are speaking now, at these levels. The server sends the
   * list only when it changes (the empty list once when everyone fell silent), so a mark stays
   * until the next list leaves the user out; no timer.
   */
  setSpeakers(speakers) {
    this.speaking = new Map((speakers ?? []).map((s) => [s.user_id, s.level]));
    this.stopped.clear();
    this.paintSpeakers();
  }

  /**
   * One speaker stops at once (muted, demoted, left), before the server's next list says so.
   * The mark is hidden, not forgotten: if the speaker is back (unmuted, promoted) before that
   * list went out, the server sends none (its list did not change) and the mark must return.
   */
  stopSpeaking(userId) {
    this.stopped.add(userId);
    this.paintSpeakers();
  }

  /** Unmuted or promoted again: shown as the server's last list has it. */
  mayResumeSpeaking(userId) {
    if (this.stopped.delete(userId)) this.paintSpeakers();
  }

  /** Nobody is speaking any more (connection closed, event ended). */
  clearSpeakers() {
    this.setSpeakers([]);
  }

  /** The user's level in active_speakers (127 loudest), or undefined while not speaking. */
  levelOf(userId) {
    return this.stopped.has(userId) ? undefined : this.speaking.get(userId);
  }

  /** Updates the rows in place (no re-render: four times a second must not disturb buttons). */
  paintSpeakers() {
    if (!this.tbody) return;
    for (const row of this.tbody.rows) {
      const level = this.levelOf(row.dataset.user);
      const ring = row.querySelector(".speaking");
      if (level === undefined) {
        delete row.dataset.speaking;
        if (ring) {
          ring.removeAttribute("title");
          ring.removeAttribute("aria-label");
        }
        continue;
      }
      row.dataset.speaking = String(level);
      if (!ring) continue;
      ring.style.setProperty("--strength", speakingStrength(level).toFixed(2));
      ring.title = `speaking (level ${level} of 127)`;
      ring.setAttribute("aria-label", "speaking");
    }
  }

  /** Renders rows into a tbody; actions(p) returns buttons for a row. */
  render(tbody, me, actions = () => []) {
    this.tbody = tbody;
    tbody.replaceChildren(
      ...this.list.map((p) =>
        el("tr", { dataset: { user: p.user_id, role: p.role } },
          el("td", {},
            el("span", { class: "speaking", role: "img" }), // shown by tr[data-speaking] (style.css)
            p.username, p.user_id === me ? el("span", { class: "muted" }, " (you)") : null),
          el("td", {},
            el("span", { class: `badge ${p.role}` }, roleLabel[p.role] ?? p.role),
            p.muted ? el("span", { class: "badge muted" }, " muted") : null),
          el("td", {}, p.verified ? "✓" : "–"),
          el("td", { class: "actions" }, ...actions(p)))));
    this.paintSpeakers();
  }
}
