#!/usr/bin/env python3
"""Converts a VP8 IVF file into the `.frames` container.

Container: repeated records of
    [u32 BE payload length][u8 flags][u32 BE timestamp, 90 kHz clock][payload]
where the length counts the payload only, flags bit 0x01 marks a keyframe (taken from the VP8
payload header: bit 0 of the first byte is 0 for a keyframe, RFC 6386 section 9.1), and the
timestamp is the IVF presentation time converted from the IVF time base to 90 kHz.
"""
import struct
import sys


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    if data[:4] != b"DKIF":
        sys.exit("not an IVF file")
    header_len = struct.unpack_from("<H", data, 6)[0]
    fourcc = data[8:12]
    if fourcc != b"VP80":
        sys.exit(f"expected VP80, found {fourcc!r}")
    rate, scale = struct.unpack_from("<II", data, 16)  # time base = scale / rate seconds
    pos = header_len
    frames = keys = 0
    with open(dst, "wb") as out:
        while pos < len(data):
            size, pts = struct.unpack_from("<IQ", data, pos)
            payload = data[pos + 12:pos + 12 + size]
            if len(payload) != size:
                sys.exit("truncated IVF frame")
            pos += 12 + size
            key = (payload[0] & 0x01) == 0
            ts = (pts * scale * 90000 // rate) & 0xFFFFFFFF
            out.write(struct.pack(">IBI", size, 0x01 if key else 0x00, ts))
            out.write(payload)
            frames += 1
            keys += key
    print(f"{dst}: {frames} frames, {keys} keyframes, time base {scale}/{rate}")


if __name__ == "__main__":
    main()
