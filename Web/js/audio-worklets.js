// AudioWorklet processors (run on the audio thread). Loaded with audioWorklet.addModule.

const FRAME = 960; // 20 ms at 48 kHz: one Opus packet

/** Microphone side: collects input into 20 ms blocks and posts each to the main thread. */
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    let offset = 0;
    while (offset < channel.length) {
      const count = Math.min(FRAME - this.filled, channel.length - offset);
      this.block.set(channel.subarray(offset, offset + count), this.filled);
      this.filled += count;
      offset += count;
      if (this.filled === FRAME) {
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(FRAME);
        this.filled = 0;
      }
    }
    return true;
  }
}

/**
 * Speaker side: one small jitter buffer per source id, mixed into one output. A source starts
 * playing once `target` samples are buffered, re-buffers after an underrun, and drops its oldest
 * audio when more than `limit` samples pile up (so delay never grows).
 */
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.sources = new Map();
    this.target = 2880; // 60 ms
    this.limit = 9600; // 200 ms
    this.port.onmessage = ({ data }) => {
      if (data.remove !== undefined) return this.sources.delete(data.remove);
      let source = this.sources.get(data.source);
      if (!source) {
        source = { chunks: [], offset: 0, buffered: 0, playing: false };
        this.sources.set(data.source, source);
      }
      source.chunks.push(data.samples);
      source.buffered += data.samples.length;
      while (source.buffered > this.limit && source.chunks.length > 1) {
        const dropped = source.chunks.shift();
        source.buffered -= dropped.length - source.offset;
        source.offset = 0;
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    for (const source of this.sources.values()) {
      if (!source.playing) {
        if (source.buffered < this.target) continue;
        source.playing = true;
      }
      let written = 0;
      while (written < out.length && source.chunks.length > 0) {
        const chunk = source.chunks[0];
        const count = Math.min(out.length - written, chunk.length - source.offset);
        for (let i = 0; i < count; i++) out[written + i] += chunk[source.offset + i];
        written += count;
        source.offset += count;
        source.buffered -= count;
        if (source.offset === chunk.length) {
          source.chunks.shift();
          source.offset = 0;
        }
      }
      if (written < out.length) source.playing = false; // underrun: buffer up again
    }
    return true;
  }
}

registerProcessor("airwave-capture", CaptureProcessor);
registerProcessor("airwave-playback", PlaybackProcessor);
