// One WebSocket to the server that reconnects with back-off where the protocol allows resuming
// (a host within its grace period, a verified listener, a room member), and tells the page
// which state it is in.
import { describeClose } from "./protocol.js";

/**
 * States passed to `onState`: "connecting", "open", "reconnecting" (with `delay` ms),
 * "closed" (with `info` from describeClose: title, detail, state).
 */
export class Connection {
  /**
   * @param {object} options
   * @param {() => string} options.url            the socket URL (asked again on every attempt)
   * @param {() => boolean} options.resumable     may a dropped connection be re-opened?
   * @param {number} [options.retryFor]           give up after this many ms without success
   * @param {(msg: object) => void} options.onMessage   every JSON text frame
   * @param {(data: ArrayBuffer) => void} [options.onMedia]  every binary frame
   * @param {(state: string, extra: object) => void} options.onState
   */
  constructor({ url, resumable, retryFor = 60000, onMessage, onMedia = () => {}, onState }) {
    Object.assign(this, { url, resumable, retryFor, onMessage, onMedia, onState });
    this.socket = null;
    this.attempt = 0;
    this.droppedAt = null;
    this.stopped = false;
    this.lastError = null;
    this.shuttingDown = false;
    this.timer = null;
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    this.stopped = false;
    this.lastError = null;
    this.shuttingDown = false;
    const socket = new WebSocket(this.url());
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.onState("connecting", { attempt: this.attempt });
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.attempt = 0;
      this.droppedAt = null;
      this.onState("open", {});
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      if (typeof event.data !== "string") return this.onMedia(event.data);
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "error") this.lastError = msg;
      if (msg.type === "server_shutdown") this.shuttingDown = true;
      this.onMessage(msg);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.closed(event.code, event.reason);
    };
  }

  closed(code, reason) {
    this.socket = null;
    const info = describeClose(code, reason, this.lastError, { shuttingDown: this.shuttingDown });
    if (this.stopped) return this.onState("closed", { info, code });
    this.droppedAt ??= Date.now();
    const withinWindow = Date.now() - this.droppedAt < this.retryFor;
    if (info.retry && this.resumable() && withinWindow) {
      // 0.5 s, 1 s, 2 s, 4 s, then every 8 s, each with up to 25 % jitter.
      const delay = Math.min(8000, 500 * 2 ** this.attempt) * (1 + Math.random() * 0.25);
      this.attempt += 1;
      this.onState("reconnecting", { info, delay, code });
      this.timer = setTimeout(() => this.connect(), delay);
    } else {
      this.onState("closed", { info, code });
    }
  }

  /**
   * Behaves as if the network had dropped the connection (close code 1006): the socket is
   * abandoned without a goodbye and the page takes its reconnect path. For tests and the console.
   */
  simulateDrop() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.close();
    this.closed(1006, "");
  }

  /** Sends a JSON message; false when the socket is not open. */
  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Sends a binary media frame; dropped while not open (live audio is not worth queueing). */
  sendBinary(buffer) {
    if (!this.isOpen) return false;
    // Keep latency low: skip frames while the browser's own send buffer is backed up.
    if (this.socket.bufferedAmount > 256 * 1024) return false;
    this.socket.send(buffer);
    return true;
  }

  /** Closes for good (no reconnect). */
  close(code = 1000) {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(code);
  }
}
