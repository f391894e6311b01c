#!/usr/bin/env python3
"""Extracts the audio packets of an Ogg Opus file into the `.opus-packets` container.

Container: repeated records of `[u32 big-endian length][packet bytes]`, nothing else.
The OpusHead and OpusTags header packets are skipped. Packets that span pages (lacing value
255 at the end of a page) are joined. Only a single logical stream is supported.

With --meta, also writes a small JSON sidecar describing the stream (packet count, pre-skip,
final granule position, the sample count of the source audio), used by the tests to check
that the packet durations add up.
"""
import argparse
import json
import struct
import sys
import wave


def pages(data):
    pos = 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"no Ogg capture pattern at offset {pos}")
        (version, header_type, granule, serial, seqno, crc, nsegs) = struct.unpack_from(
            "<BBqIIIB", data, pos + 4)
        if version != 0:
            raise ValueError(f"Ogg version {version} at offset {pos}")
        lacing = data[pos + 27:pos + 27 + nsegs]
        body = pos + 27 + nsegs
        yield header_type, granule, serial, list(lacing), data[body:body + sum(lacing)]
        pos = body + sum(lacing)


def packets(data):
    """Yields (packet bytes, granule of the page where it ends or None)."""
    partial = b""
    stream_serial = None
    for header_type, granule, serial, lacing, body in pages(data):
        if stream_serial is None:
            stream_serial = serial
        elif serial != stream_serial:
            raise ValueError("more than one logical stream")
        if not (header_type & 0x01):  # not a continuation page: nothing may be pending
            if partial:
                raise ValueError("packet left unfinished before a fresh page")
        off = 0
        ended = []
        for value in lacing:
            partial += body[off:off + value]
            off += value
            if value < 255:
                ended.append(partial)
                partial = b""
        for i, p in enumerate(ended):
            yield p, (granule if i == len(ended) - 1 else None)
    if partial:
        raise ValueError("stream ends inside a packet")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ogg")
    ap.add_argument("out")
    ap.add_argument("--source-wav")
    ap.add_argument("--text")
    ap.add_argument("--meta")
    args = ap.parse_args()
    data = open(args.ogg, "rb").read()
    all_packets = list(packets(data))
    head, tags = all_packets[0][0], all_packets[1][0]
    if not head.startswith(b"OpusHead") or not tags.startswith(b"OpusTags"):
        sys.exit("not an Ogg Opus stream")
    channels = head[9]
    pre_skip = struct.unpack_from("<H", head, 10)[0]
    audio = [p for p, _ in all_packets[2:]]
    final_granule = [g for _, g in all_packets if g is not None][-1]
    with open(args.out, "wb") as f:
        for p in audio:
            f.write(struct.pack(">I", len(p)))
            f.write(p)
    if args.meta:
        meta = {
            "packets": len(audio),
            "channels": channels,
            "pre_skip": pre_skip,
            "final_granule": final_granule,
            "frame_ms": 20,
        }
        if args.source_wav:
            with wave.open(args.source_wav) as w:
                meta["source_rate"] = w.getframerate()
                meta["source_samples"] = w.getnframes()
        if args.text:
            meta["text"] = args.text
        with open(args.meta, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"{args.out}: {len(audio)} packets, pre-skip {pre_skip}, final granule {final_granule}")


if __name__ == "__main__":
    main()
