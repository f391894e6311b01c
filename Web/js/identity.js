// Who the person at this browser is: name, user id and token, from the URL first, then what
// the start page remembered (name and id in localStorage, the token only for this tab).
import { randomId } from "./protocol.js";
import { params } from "./ui.js";

export function loadIdentity() {
  const name = params.get("name") ?? localStorage.getItem("airwave.name") ?? "";
  const user = params.get("user") ?? localStorage.getItem("airwave.user") ?? randomId("guest");
  const token = params.get("token") ?? sessionStorage.getItem("airwave.token") ?? "";
  return { name, user, token };
}

export function saveIdentity({ name, user, token }) {
  localStorage.setItem("airwave.name", name);
  localStorage.setItem("airwave.user", user);
  if (token) sessionStorage.setItem("airwave.token", token);
  else sessionStorage.removeItem("airwave.token");
}
