#!/usr/bin/env python3
"""Writes `malformed-opus.packets`: Opus packets that libopus must reject.

Same container as speech.opus-packets: repeated [u32 BE length][packet bytes]. Every packet
is checked here, through ctypes, to make libopus's opus_packet_parse return an error; the
generator fails if one is accepted. Random garbage comes from a fixed seed, so the output is
deterministic.
"""
import ctypes
import ctypes.util
import random
import struct
import sys

lib = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
lib.opus_packet_parse.argtypes = [
    ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_ubyte),
    ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int16), ctypes.POINTER(ctypes.c_int)]
lib.opus_packet_parse.restype = ctypes.c_int


def parse(packet):
    toc = ctypes.c_ubyte()
    frames = (ctypes.c_void_p * 48)()
    sizes = (ctypes.c_int16 * 48)()
    offset = ctypes.c_int()
    buf = ctypes.create_string_buffer(bytes(packet), max(len(packet), 1))
    return lib.opus_packet_parse(buf, len(packet), ctypes.byref(toc), frames, sizes,
                                 ctypes.byref(offset))


def toc(config, stereo, code):
    return (config << 3) | (0x04 if stereo else 0) | code


def main():
    cases = [
        ("empty packet", b""),
        # code 3 (arbitrary frame count), frame count byte says 0 frames
        ("code 3, frame count 0", bytes([toc(1, False, 3), 0x00]) + bytes(10)),
        # CELT 2.5 ms frames (config 16), CBR code 3 with 48 frames (48 x 2.5 ms = 120 ms, the
        # limit) but only 3 payload bytes: 3 is not a multiple of 48
        ("code 3, 48 CBR frames, 3 bytes", bytes([toc(16, False, 3), 48, 1, 2, 3])),
        # the same as VBR: 47 length bytes would be needed, there are 5
        ("code 3, 48 VBR frames, too few length bytes", bytes([toc(16, False, 3), 0x80 | 48]) + bytes([1] * 5)),
        # code 2 (two frames, explicit first length) with a first frame of 200 bytes and 10 bytes of data
        ("code 2, first frame longer than the data", bytes([toc(1, False, 2), 200]) + bytes(10)),
        # code 2 whose length needs two bytes (first byte >= 252) but the packet ends
        ("code 2, truncated two-byte length", bytes([toc(1, False, 2), 0xFC])),
        # code 1 (two equal frames) with an odd payload length
        ("code 1, odd payload", bytes([toc(1, False, 1)]) + bytes(7)),
        # code 3 with 7 frames of 20 ms: 140 ms, more than the 120 ms a packet may hold
        ("code 3, 7 x 20 ms = 140 ms", bytes([toc(1, False, 3), 7]) + bytes(7 * 3)),
        # code 0 with a single 1276-byte frame: a frame is at most 1275 bytes
        ("code 0, 1276-byte frame", bytes([toc(1, False, 0)]) + bytes(1276)),
        # code 3 with padding flag whose padding length runs past the end of the packet
        ("code 3, padding longer than the packet", bytes([toc(1, False, 3), 0x40 | 1, 0xFF, 0xFF, 0x10]) + bytes(4)),
    ]
    rng = random.Random(6716)
    garbage = 0
    while garbage < 6:
        n = rng.randint(2, 64)
        candidate = bytes(rng.getrandbits(8) for _ in range(n))
        if parse(candidate) < 0:
            cases.append((f"random garbage #{garbage + 1}", candidate))
            garbage += 1
    with open(sys.argv[1], "wb") as out:
        for name, packet in cases:
            result = parse(packet)
            if result >= 0:
                sys.exit(f"libopus accepted the malformed case {name!r} ({result} frames)")
            out.write(struct.pack(">I", len(packet)))
            out.write(packet)
            print(f"  {name}: {len(packet)} bytes, opus_packet_parse -> {result}")
    print(f"{sys.argv[1]}: {len(cases)} packets")


if __name__ == "__main__":
    main()
