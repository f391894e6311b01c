#!/usr/bin/env bash
# Regenerates every file of Fixtures/media (see Fixtures/media/README.md).
#
# Needs (Debian/Ubuntu): apt-get install espeak-ng sox opus-tools ffmpeg libopus0 python3
# Only regenerating needs these; building and testing the package needs libopus-dev and
# pkg-config alone, because the fixtures are committed.
#
# Deterministic for a given set of tool versions: espeak-ng, sox (run with -R and no dither),
# libopus (opusenc with a fixed serial number) and libvpx (one thread, fixed settings) all give
# the same bytes for the same input. Different tool versions may give different (equally
# valid) packets; the tests check properties, not exact bytes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(cd "$here/../.." && pwd)/Fixtures/media"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in espeak-ng sox opusenc ffmpeg python3; do
    command -v "$tool" >/dev/null || { echo "make-fixtures: $tool is missing" >&2; exit 1; }
done

# 1. Speech: espeak-ng (22.05 kHz mono) -> sox to 48 kHz s16 mono -> opusenc, 20 ms frames,
#    32 kb/s -> Ogg pages parsed into [u32 BE length][packet] records.
text="Airwave relays live audio rooms to every listener."
espeak-ng -v en -s 160 -w "$work/speech-22k.wav" "$text"
sox -R -D -V1 "$work/speech-22k.wav" -r 48000 -c 1 -b 16 -e signed-integer "$work/speech-48k.wav"
opusenc --quiet --serial 1 --framesize 20 --bitrate 32 --comp 10 \
    "$work/speech-48k.wav" "$work/speech.opus"
python3 "$here/ogg2packets.py" "$work/speech.opus" "$out/speech.opus-packets" \
    --source-wav "$work/speech-48k.wav" --text "$text" --meta "$out/speech.opus-packets.json"

# 2. Tones: exact sines at -6 dBFS, s16le 48 kHz, written by a script (no dither, no tool
#    version dependence).
python3 "$here/tones.py" "$out"

# 3. Screen video: 2 s of testsrc2 320x180 at 15 fps, VP8, a keyframe exactly every 10 frames,
#    IVF parsed into [u32 BE length][u8 flags][u32 BE timestamp 90 kHz][payload] records.
ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=320x180:rate=15" -t 2 -pix_fmt yuv420p \
    -c:v libvpx -threads 1 -deadline good -cpu-used 4 -b:v 150k \
    -g 10 -keyint_min 10 -auto-alt-ref 0 -lag-in-frames 0 \
    -fflags +bitexact -flags +bitexact \
    -f ivf "$work/screen.ivf"
python3 "$here/ivf2frames.py" "$work/screen.ivf" "$out/screen-vp8.frames"

# 4. Malformed Opus packets, each checked to be rejected by libopus's opus_packet_parse.
python3 "$here/malformed.py" "$out/malformed-opus.packets"

ls -l "$out"
