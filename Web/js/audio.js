// Audio with WebCodecs: every speaker's Opus decoded per source id (AudioDecoder) into a
// jitter-buffered AudioWorklet mix; the microphone encoded to 20 ms mono Opus (AudioEncoder).
import { Flag, Kind, audioClock, encodeFrame, rfc6464Level } from "./protocol.js";

const SAMPLE_RATE = 48000;

/** The page's one AudioContext (48 kHz) with the worklets loaded. */
export class AudioEngine {
  constructor() {
    this.context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: "interactive" });
    this.ready = this.context.audioWorklet.addModule(new URL("./audio-worklets.js", import.meta.url));
  }

  /** True while the browser blocks sound until the person clicks (autoplay policy). */
  get blocked() {
    return this.context.state !== "running";
  }

  resume() {
    return this.context.resume();
  }
}

/** Plays every source id's Opus frames; measures what it plays (AnalyserNode). */
export class SpeakerMix {
  constructor(engine) {
    this.engine = engine;
    this.decoders = new Map();
    this.framesBySource = new Map();
    this.ready = engine.ready.then(() => {
      const context = engine.context;
      this.node = new AudioWorkletNode(context, "airwave-playback", { numberOfInputs: 0, outputChannelCount: [1] });
      this.analyser = context.createAnalyser();
      this.analyser.fftSize = 16384; // 2.9 Hz bins at 48 kHz
      this.analyser.smoothingTimeConstant = 0;
      this.node.connect(this.analyser);
      this.analyser.connect(context.destination);
    });
  }

  /** Feeds one received media frame (kind 1, Opus). */
  push(frame) {
    if (frame.kind !== Kind.opus || !this.node) return;
    const source = frame.sourceId;
    this.framesBySource.set(source, (this.framesBySource.get(source) ?? 0) + 1);
    let decoder = this.decoders.get(source);
    if (!decoder || decoder.state === "closed") {
      decoder = this.makeDecoder(source);
      this.decoders.set(source, decoder);
    }
    if (decoder.decodeQueueSize > 25) return; // decoder far behind: drop rather than add delay
    try {
      decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: (frame.timestamp * 1e6) / SAMPLE_RATE, data: frame.payload }));
    } catch (error) {
      console.warn("opus decode", source, error);
    }
  }

  makeDecoder(source) {
    const decoder = new AudioDecoder({
      output: (data) => {
        const samples = new Float32Array(data.numberOfFrames);
        data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
        data.close();
        if (this.decoders.get(source) === decoder) this.node.port.postMessage({ source, samples }, [samples.buffer]);
      },
      error: (error) => console.warn("opus decoder", source, error),
    });
    decoder.configure({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
    return decoder;
  }

  /** Stops a speaker at once: its decoder and its buffered audio go. */
  removeSource(source) {
    const decoder = this.decoders.get(source);
    this.decoders.delete(source);
    if (decoder && decoder.state !== "closed") decoder.close();
    this.node?.port.postMessage({ remove: source });
  }

  /** Spectrum in dB per bin of what is playing now. */
  spectrum() {
    const bins = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(bins);
    return bins;
  }

  /** The loudest frequency (Hz) between lo and hi, with its level in dB. */
  peak(lo = 50, hi = 4000) {
    const bins = this.spectrum();
    const hz = this.engine.context.sampleRate / this.analyser.fftSize;
    let best = -Infinity;
    let index = 0;
    for (let i = Math.ceil(lo / hz); i <= Math.min(bins.length - 1, Math.floor(hi / hz)); i++) {
      if (bins[i] > best) [best, index] = [bins[i], i];
    }
    // Parabolic interpolation between neighbouring bins for a finer estimate.
    const [a, b, c] = [bins[index - 1] ?? best, best, bins[index + 1] ?? best];
    const shift = a - 2 * b + c === 0 ? 0 : (0.5 * (a - c)) / (a - 2 * b + c);
    return { frequency: (index + shift) * hz, level: best };
  }

  /** Level (dB) at one frequency: the loudest bin within ±2 bins of it. */
  levelAt(frequency) {
    const bins = this.spectrum();
    const center = Math.round(frequency / (this.engine.context.sampleRate / this.analyser.fftSize));
    let best = -Infinity;
    for (let i = center - 2; i <= center + 2; i++) if (bins[i] > best) best = bins[i];
    return best;
  }

  close() {
    for (const source of [...this.decoders.keys()]) this.removeSource(source);
  }
}

/**
 * For browsers without WebCodecs (or `?player=http`): the event's mix as the live Ogg Opus stream
 * of `GET /listen/{eventId}` (PROTOCOL.md 9) in an `<audio>` element, measured like `SpeakerMix`
 * (same `peak`, `levelAt`). The WebSocket's media frames are not needed then.
 */
export class StreamPlayer {
  constructor(engine, element, url) {
    this.engine = engine;
    this.element = element;
    this.framesBySource = new Map();
    element.src = url;
    this.ready = engine.ready.then(() => {
      const context = engine.context;
      this.analyser = context.createAnalyser();
      this.analyser.fftSize = 16384;
      this.analyser.smoothingTimeConstant = 0;
      context.createMediaElementSource(element).connect(this.analyser);
      this.analyser.connect(context.destination);
    });
    this.play();
  }

  /** Starts playback; a browser that wants a click first waits for the page's sound button. */
  play() {
    return this.element.play().catch(() => {});
  }

  push() {}
  removeSource() {}

  close() {
    this.element.pause();
    this.element.removeAttribute("src");
    this.element.load();
  }
}
for (const name of ["spectrum", "peak", "levelAt"]) StreamPlayer.prototype[name] = SpeakerMix.prototype[name];

/**
 * The microphone, encoded to Opus: 48 kHz mono, 20 ms packets, each sent as one media frame whose
 * header carries the level of the 20 ms of PCM it was encoded from (RFC 6464, byte 3).
 * `processing: false` asks the browser for raw capture (no echo cancellation / noise suppression).
 */
export class Microphone {
  constructor(engine, { processing = true } = {}) {
    this.engine = engine;
    this.processing = processing;
    this.sending = false;
    this.sequence = 0;
    this.level = 0; // RMS of the last block, for the page's meter
    this.audioLevel = 127; // RFC 6464 level of the last block (127 = silence)
    this.pending = []; // [timestamp µs, RFC 6464 level] of blocks handed to the encoder
    this.marker = true;
    this.onFrame = () => {};
  }

  /** Asks for the microphone (once) and starts encoding; frames go to `onFrame(ArrayBuffer)`. */
  async start(onFrame) {
    this.onFrame = onFrame;
    if (!this.stream) {
      const processing = this.processing;
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
      });
      await this.engine.ready;
      const context = this.engine.context;
      this.source = context.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(context, "airwave-capture", { numberOfOutputs: 1, outputChannelCount: [1] });
      const silent = context.createGain(); // keeps the node pulled without playing the mic back
      silent.gain.value = 0;
      this.source.connect(this.node).connect(silent).connect(context.destination);
      this.node.port.onmessage = ({ data }) => this.capture(data);
      this.encoder = new AudioEncoder({
        output: (chunk) => this.packet(chunk),
        error: (error) => console.warn("opus encoder", error),
      });
      this.encoder.configure({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1, bitrate: 32000, opus: { frameDuration: 20000 } });
      this.clock = 0;
      this.pending = [];
    }
    this.marker = true;
    this.sending = true;
  }

  capture(samples) {
    let sum = 0;
    for (let i = 0; i < samples.length; i += 8) sum += samples[i] * samples[i];
    this.level = Math.sqrt(sum / (samples.length / 8));
    this.audioLevel = rfc6464Level(samples); // before encoding: the data's buffer moves below
    if (!this.sending || this.encoder.state !== "configured") return;
    this.pending.push([this.clock, this.audioLevel]);
    if (this.pending.length > 50) this.pending.shift(); // encoder stalled: never grow
    const data = new AudioData({ format: "f32-planar", sampleRate: SAMPLE_RATE, numberOfFrames: samples.length, numberOfChannels: 1, timestamp: this.clock, data: samples });
    this.clock += (samples.length * 1e6) / SAMPLE_RATE;
    this.encoder.encode(data);
    data.close();
  }

  packet(chunk) {
    if (!this.sending) return;
    const payload = new Uint8Array(chunk.byteLength);
    chunk.copyTo(payload);
    const flags = this.marker ? Flag.marker : 0;
    this.marker = false;
    const audioLevel = this.levelOf(chunk.timestamp);
    this.onFrame(encodeFrame({ kind: Kind.opus, flags, sequence: this.sequence++, timestamp: audioClock(chunk.timestamp), audioLevel, payload }));
  }

  /**
   * The level of the block a packet was encoded from. Capture blocks are exactly one 20 ms Opus
   * frame, so a packet's timestamp is its block's; blocks older than the packet are passed over
   * (packets the encoder merged or dropped), and with no match the last measured level is used.
   */
  levelOf(timestamp) {
    while (this.pending.length > 0 && this.pending[0][0] < timestamp - 10000) this.pending.shift();
    if (this.pending.length > 0 && Math.abs(this.pending[0][0] - timestamp) <= 10000) return this.pending.shift()[1];
    return this.audioLevel;
  }

  /** Stops sending (the device stays open so speaking again is instant). */
  pause() {
    this.sending = false;
  }

  /** Releases the device. */
  stop() {
    this.sending = false;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.source?.disconnect();
    this.node?.disconnect();
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    this.stream = null;
  }
}
