#!/usr/bin/env python3
"""Writes the raw PCM tone fixtures: s16le, 48 kHz, interleaved, no header.

tone-440hz-mono.pcm    1 s,   mono,   440 Hz at -6 dBFS (amplitude 0.5 * 32767 = 16383.5)
tone-660hz-stereo.pcm  0.5 s, stereo, 660 Hz; left at -6 dBFS, right at -12 dBFS (amplitude
                       0.25 * 32767), same phase, so a swapped channel order is detectable.

Each sample is round(amplitude * 32767 * sin(2 pi f n / 48000)); fully deterministic.
"""
import math
import struct
import sys

RATE = 48000


def sine(freq, n, gain):
    return [round(gain * 32767 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n)]


def main():
    out = sys.argv[1]
    mono = sine(440, RATE, 0.5)
    with open(f"{out}/tone-440hz-mono.pcm", "wb") as f:
        f.write(struct.pack(f"<{len(mono)}h", *mono))
    left = sine(660, RATE // 2, 0.5)
    right = sine(660, RATE // 2, 0.25)
    inter = [s for pair in zip(left, right) for s in pair]
    with open(f"{out}/tone-660hz-stereo.pcm", "wb") as f:
        f.write(struct.pack(f"<{len(inter)}h", *inter))


if __name__ == "__main__":
    main()
