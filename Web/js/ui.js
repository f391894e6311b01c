// Small DOM helpers shared by the pages (no framework).

export const $ = (selector, root = document) => root.querySelector(selector);

/** Creates an element: el("button", {class: "x", onclick: f}, "text", child…). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The page's query parameters. */
export const params = new URLSearchParams(location.search);

/** Shows the connection state in the header pill: kind is ok | wait | bad | off. */
export function setStatus(kind, text) {
  const pill = $("#status");
  pill.className = `pill ${kind}`;
  pill.textContent = text;
  document.body.dataset.state = kind;
}

/** A banner over the page for states the person must notice (ended, refused, reconnecting…). */
export function showBanner(kind, title, detail, action) {
  const banner = $("#banner");
  banner.hidden = false;
  banner.className = `banner ${kind}`;
  banner.replaceChildren(el("strong", {}, title), el("span", {}, ` ${detail ?? ""}`));
  if (action) banner.append(el("button", { onclick: action.run }, action.label));
}

export function hideBanner() {
  $("#banner").hidden = true;
}

/** A short message in the corner that goes away by itself. */
export function toast(text, kind = "info") {
  const box = $("#toasts");
  const item = el("div", { class: `toast ${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

/** Appends one chat line and keeps the newest in view. */
export function addChatLine(list, { username, name, message, sent_at }, mine = false) {
  const time = sent_at ? new Date(sent_at) : new Date();
  list.append(
    el("li", { class: mine ? "mine" : "" },
      el("span", { class: "who" }, username ?? name ?? "?"),
      el("span", { class: "when" }, time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      el("div", { class: "text" }, message)));
  while (list.children.length > 300) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

/** Wires a chat form: calls send(text) and clears the field. */
export function wireChatForm(form, send) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = form.elements.message;
    const text = input.value.trim();
    if (!text) return;
    if (send(text)) input.value = "";
  });
}

/** The human text for an error frame's code, for toasts. */
export function errorText(error) {
  return `${error.message ?? error.code}`;
}

export const roleLabel = { host: "Host", cohost: "Co-host", listener: "Listener" };
