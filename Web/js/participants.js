// The participant list of a live event as the server last sent it (participant_list), plus
// the source id of each speaker so a page can stop a speaker's audio the moment it is demoted.
import { el, roleLabel } from "./ui.js";

export class Participants {
  constructor() {
    this.list = [];
    this.sourceByUser = new Map();
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
  }

  setMuted(userId, muted) {
    const p = this.find(userId);
    if (p) p.muted = muted;
  }

  /** Renders rows into a tbody; actions(p) returns buttons for a row. */
  render(tbody, me, actions = () => []) {
    tbody.replaceChildren(
      ...this.list.map((p) =>
        el("tr", { dataset: { user: p.user_id, role: p.role } },
          el("td", {}, p.username, p.user_id === me ? el("span", { class: "muted" }, " (you)") : null),
          el("td", {},
            el("span", { class: `badge ${p.role}` }, roleLabel[p.role] ?? p.role),
            p.muted ? el("span", { class: "badge muted" }, " muted") : null),
          el("td", {}, p.verified ? "✓" : "–"),
          el("td", { class: "actions" }, ...actions(p)))));
  }
}
