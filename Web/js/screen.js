// Screen sharing with WebCodecs: the host captures the screen (getDisplayMedia) — or a drawn
// test pattern when the page is opened with ?screen=canvas, for machines without a screen to
// capture — and encodes VP8 (VideoEncoder); viewers decode (VideoDecoder) onto a canvas.
import { Flag, Kind, encodeFrame, videoClock } from "./protocol.js";

const FPS = 15;
const KEYFRAME_EVERY = FPS * 10; // a keyframe at least every 10 s

/** The host's side: capture, encode, hand out media frames. */
export class ScreenSender {
  /**
   * @param {object} options
   * @param {"display"|"canvas"} options.source
   * @param {(frame: ArrayBuffer) => void} options.onFrame
   * @param {() => void} options.onEnded   the person stopped sharing from the browser's own UI
   */
  constructor({ source, onFrame, onEnded }) {
    Object.assign(this, { source, onFrame, onEnded });
    this.sequence = 0;
    this.count = 0;
    this.forceKeyframe = true;
  }

  /** Starts capturing; resolves with the codec fields for `switching_to_screen_sharing`. */
  async start() {
    if (this.source === "canvas") {
      this.element = makeTestPattern();
      this.width = this.element.width;
      this.height = this.element.height;
    } else {
      this.stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: FPS }, audio: false });
      const track = this.stream.getVideoTracks()[0];
      track.addEventListener("ended", () => this.onEnded());
      const video = document.createElement("video");
      video.muted = true;
      video.playsInline = true;
      video.srcObject = this.stream;
      await video.play();
      this.element = video;
      // VP8 wants even sizes; keep screens at most 1280 wide.
      const scale = Math.min(1, 1280 / video.videoWidth);
      this.width = Math.max(2, Math.round((video.videoWidth * scale) / 2) * 2);
      this.height = Math.max(2, Math.round((video.videoHeight * scale) / 2) * 2);
    }
    this.encoder = new VideoEncoder({ output: (chunk, metadata) => this.encoded(chunk, metadata), error: (e) => console.warn("vp8 encoder", e) });
    this.config = { codec: "vp8", width: this.width, height: this.height, bitrate: 1_200_000, framerate: FPS, latencyMode: "realtime" };
    this.encoder.configure(this.config);
    return { codec: "vp8", width: this.width, height: this.height };
  }

  /** Begins sending frames (call after announcing the switch so the first frame is a keyframe). */
  run() {
    this.forceKeyframe = true;
    this.timer = setInterval(() => this.tick(), 1000 / FPS);
  }

  tick() {
    if (!this.encoder || this.encoder.state !== "configured" || this.encoder.encodeQueueSize > 2) return;
    if (this.element.tick) this.element.tick();
    let frame;
    try {
      frame = new VideoFrame(this.element, { timestamp: Math.round(performance.now() * 1000) });
    } catch {
      return; // the video has no frame yet
    }
    const keyFrame = this.forceKeyframe || this.count % KEYFRAME_EVERY === 0;
    this.forceKeyframe = false;
    this.count += 1;
    if (frame.displayWidth !== this.width || frame.displayHeight !== this.height) {
      const scaled = new VideoFrame(frame, { timestamp: frame.timestamp, displayWidth: this.width, displayHeight: this.height });
      frame.close();
      frame = scaled;
    }
    this.encoder.encode(frame, { keyFrame });
    frame.close();
  }

  encoded(chunk, metadata) {
    const description = metadata?.decoderConfig?.description;
    if (description) {
      // Codecs with out-of-band configuration (not VP8) send it as a config frame first.
      const payload = new Uint8Array(description.buffer ?? description);
      this.onFrame(encodeFrame({ kind: Kind.screen, flags: Flag.config, sequence: this.sequence++, timestamp: videoClock(chunk.timestamp), payload }));
    }
    const payload = new Uint8Array(chunk.byteLength);
    chunk.copyTo(payload);
    const flags = chunk.type === "key" ? Flag.keyframe : 0;
    this.onFrame(encodeFrame({ kind: Kind.screen, flags, sequence: this.sequence++, timestamp: videoClock(chunk.timestamp), payload }));
  }

  /** The server or a viewer asked for a keyframe (`keyframe_request`). */
  requestKeyframe() {
    this.forceKeyframe = true;
  }

  /** The element showing what is shared (for a local preview). */
  get preview() {
    return this.element;
  }

  stop() {
    clearInterval(this.timer);
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    this.stream?.getTracks().forEach((track) => track.stop());
    this.encoder = null;
  }
}

/** A moving test pattern on a canvas (the `?screen=canvas` source). */
function makeTestPattern() {
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 360;
  const g = canvas.getContext("2d");
  const colors = ["#1d4ed8", "#0f766e", "#b45309", "#be123c", "#6d28d9", "#15803d", "#334155", "#c2410c"];
  let step = 0;
  canvas.tick = () => {
    step += 1;
    colors.forEach((color, i) => {
      g.fillStyle = color;
      g.fillRect(i * 80, 0, 80, 360);
    });
    g.fillStyle = "#f8fafc";
    g.fillRect((step * 6) % 640, 150, 60, 60);
    g.font = "bold 36px sans-serif";
    g.fillText("Airwave screen share", 130, 80);
    g.font = "24px monospace";
    g.fillText(new Date().toISOString().slice(11, 23), 230, 300);
  };
  canvas.tick();
  return canvas;
}

/** A viewer's side: decodes screen frames onto a canvas. */
export class ScreenReceiver {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {() => void} askKeyframe  sends `keyframe_request` (called at most every 2 s)
   */
  constructor(canvas, askKeyframe) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.askKeyframe = askKeyframe;
    this.framesDrawn = 0;
    this.lastAsk = 0;
    this.decoder = null;
  }

  /** Screen mode with these codec fields (from stream_state.screen or stream_mode_changed). */
  configure(fields) {
    this.reset();
    this.fields = fields;
    const config = { codec: fields.codec || "vp8", optimizeForLatency: true };
    if (fields.width && fields.height) Object.assign(config, { codedWidth: fields.width, codedHeight: fields.height });
    if (fields.description) config.description = Uint8Array.from(atob(fields.description), (c) => c.charCodeAt(0));
    this.config = config;
    this.decoder = new VideoDecoder({
      output: (frame) => this.draw(frame),
      error: (error) => {
        console.warn("screen decoder", error);
        this.needKeyframe = true;
        this.decoder = null; // rebuilt on the next keyframe
      },
    });
    this.decoder.configure(config);
    this.needKeyframe = true;
  }

  push(frame) {
    if (frame.kind !== Kind.screen || !this.config) return;
    if (frame.flags & Flag.config) {
      this.configure({ ...this.fields, description: btoa(String.fromCharCode(...frame.payload)) });
      return;
    }
    const key = (frame.flags & Flag.keyframe) !== 0;
    if (this.needKeyframe && !key) return this.ask();
    if (!this.decoder || this.decoder.state === "closed") {
      if (!key) return this.ask();
      this.configure(this.fields);
    }
    this.needKeyframe = false;
    this.decoder.decode(new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: (frame.timestamp * 1000) / 90, data: frame.payload }));
  }

  ask() {
    const now = performance.now();
    if (now - this.lastAsk < 2000) return;
    this.lastAsk = now;
    this.askKeyframe();
  }

  draw(frame) {
    if (this.canvas.width !== frame.displayWidth || this.canvas.height !== frame.displayHeight) {
      this.canvas.width = frame.displayWidth;
      this.canvas.height = frame.displayHeight;
    }
    this.context.drawImage(frame, 0, 0);
    frame.close();
    this.framesDrawn += 1;
  }

  /** Fraction of sampled pixels that are not black (tests and a "no picture yet" hint). */
  litFraction() {
    const { width, height } = this.canvas;
    if (!width || !height) return 0;
    const pixels = this.context.getImageData(0, 0, width, height).data;
    let lit = 0;
    let total = 0;
    for (let i = 0; i < pixels.length; i += 4 * 97) {
      total += 1;
      if (pixels[i] + pixels[i + 1] + pixels[i + 2] > 60) lit += 1;
    }
    return lit / total;
  }

  reset() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    this.config = null;
  }
}
