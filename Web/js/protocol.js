// The wire contract of PROTOCOL.md, and nothing else: media frame layout (section 4), socket
// URLs (sections 2 and 3) and what each error / close code means for the person at the page.

/** Media frame kinds (PROTOCOL.md 4). */
export const Kind = Object.freeze({ opus: 1, pcm: 2, screen: 3 });
/** Media frame flags (PROTOCOL.md 4). */
export const Flag = Object.freeze({ keyframe: 0x01, config: 0x02, marker: 0x04, stereo: 0x08 });
export const HEADER_SIZE = 16;

/**
 * One media frame as bytes: 16-byte big-endian header, then the payload. `audioLevel` (RFC 6464,
 * 0 = 0 dBov … 127 = silence), when given, goes into byte 3 as `0x80 | level` (docs/protocol.md,
 * "Audio level in the frame header"); without it byte 3 stays 0, "no level".
 */
export function encodeFrame({ kind, flags = 0, sequence = 0, timestamp = 0, audioLevel = null, payload }) {
  const bytes = new Uint8Array(HEADER_SIZE + payload.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 1); // version
  view.setUint8(1, kind);
  view.setUint8(2, flags);
  view.setUint8(3, audioLevel == null ? 0 : 0x80 | clampLevel(audioLevel));
  view.setUint32(4, 0); // source id: 0 from clients, the server sets it
  view.setUint32(8, sequence >>> 0);
  view.setUint32(12, timestamp >>> 0);
  bytes.set(payload instanceof Uint8Array ? payload : new Uint8Array(payload), HEADER_SIZE);
  return bytes.buffer;
}

const clampLevel = (level) => (Number.isFinite(level) ? Math.min(127, Math.max(0, Math.round(level))) : 127);

/**
 * The RFC 6464 level of a block of float samples (full scale ±1): −dBov of its RMS, where
 * 0 dBov is a full-scale square wave (a full-scale sine is −3 dBov, level 3), rounded and clamped to
 * 0…127 (digital silence is 127).
 */
export function rfc6464Level(samples) {
  if (samples.length === 0) return 127;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const meanSquare = sum / samples.length;
  if (meanSquare <= 0) return 127;
  return clampLevel(-10 * Math.log10(meanSquare));
}

/** Parses a binary WebSocket message; null for anything that is not a version-1 frame. */
export function decodeFrame(buffer) {
  if (buffer.byteLength < HEADER_SIZE) return null;
  const view = new DataView(buffer);
  if (view.getUint8(0) !== 1) return null;
  const level = view.getUint8(3);
  return {
    kind: view.getUint8(1),
    flags: view.getUint8(2),
    audioLevel: level & 0x80 ? level & 0x7f : null, // RFC 6464; the server always sends none
    sourceId: view.getUint32(4),
    sequence: view.getUint32(8),
    timestamp: view.getUint32(12),
    payload: new Uint8Array(buffer, HEADER_SIZE),
  };
}

/** ws:// or wss:// of the server that served this page (same origin). */
export function socketBase() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}`;
}

const seg = encodeURIComponent;
const withQuery = (path, query) => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value);
  const text = params.toString();
  return socketBase() + path + (text ? `?${text}` : "");
};

/** Socket URLs of PROTOCOL.md 2.1, 2.2, 2.5 and 3. */
export const urls = {
  host: (userId, token) => withQuery(`/ws/stream/start/live/${seg(userId)}/`, { token }),
  join: (eventId, userId, username, token) =>
    withQuery(`/ws/stream/live/join/event/${seg(eventId)}/${username ? `${seg(username)}/` : ""}${seg(userId)}/`, { token }),
  directory: () => withQuery("/ws/active-streams/", {}),
  room: (roomId, name, token) => withQuery(`/ws/session/${seg(roomId)}/`, { name, token }),
};

/** Ids in paths: 1–64 characters of [A-Za-z0-9_.@-] (PROTOCOL.md 1, bad_request). */
export const isValidId = (text) => /^[A-Za-z0-9_.@-]{1,64}$/.test(text ?? "");

/** A fresh id for a guest. */
export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * What a close means: a title and a sentence for the page, and whether reconnecting can help.
 * `lastError` is the error frame that preceded the close, if any (PROTOCOL.md 1: errors while
 * connecting come first, then the close).
 */
export function describeClose(code, reason, lastError, { shuttingDown = false } = {}) {
  const said = lastError?.message ? ` ${lastError.message}` : "";
  if (shuttingDown && code !== 4000) {
    return { state: "shutdown", title: "Server shutting down", detail: "The server is restarting or stopping.", retry: false };
  }
  switch (code) {
    case 4401: {
      const why = lastError?.details?.reason ?? reason;
      const expired = /expir/i.test(`${why} ${lastError?.message ?? ""}`);
      return {
        state: "unauthorized",
        title: expired ? "Token expired" : "Token refused",
        detail: expired ? "Your token has expired: mint a new one with `airwave token`." : `The server did not accept your token.${said}`,
        retry: false,
      };
    }
    case 4403: return { state: "forbidden", title: "Wrong user", detail: `This token belongs to another user.${said}`, retry: false };
    case 4404: return { state: "not_found", title: "No such event", detail: `There is no event with this id.${said}`, retry: false };
    case 4410: return { state: "ended", title: "Event ended", detail: "This event has ended.", retry: false };
    case 4409: return { state: "duplicate", title: "Already here", detail: `This user is already in the event (from another tab or device).${said}`, retry: false };
    case 4000: return { state: "replaced", title: "Opened elsewhere", detail: "You opened this in another tab or device; this page stepped aside.", retry: false };
    case 4408: return { state: "too_slow", title: "Connection too slow", detail: "Your connection could not keep up and was dropped.", retry: true };
    case 4400: return { state: "bad_request", title: "Bad address", detail: `The ids in this address are not valid.${said}`, retry: false };
    case 1009: return { state: "too_big", title: "Message too large", detail: "The server closed the connection: a message was too large.", retry: true };
    case 1000: return { state: "closed", title: "Closed", detail: reason || "The connection was closed.", retry: false };
    case 1001:
      return { state: "lost", title: "Connection lost", detail: "The server went away.", retry: true };
    default: return { state: "lost", title: "Connection lost", detail: `The connection dropped (code ${code}).`, retry: true };
  }
}

/** 48 kHz audio clock and 90 kHz video clock from microseconds (PROTOCOL.md 4), wrapping as u32. */
export const audioClock = (micros) => Math.round((micros * 48) / 1000) >>> 0;
export const videoClock = (micros) => Math.round((micros * 90) / 1000) >>> 0;
