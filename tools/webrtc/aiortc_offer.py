#!/usr/bin/env python3
"""Prints an SDP offer made by aiortc, as a WHEP listener (audio recvonly, optionally VP8 video
recvonly) or a WHIP speaker (audio sendonly) would send it. Used to capture the fixtures under
Fixtures/webrtc/ (the candidates carry this machine's addresses; the parser does not care).

    python3 tools/webrtc/aiortc_offer.py whep > Fixtures/webrtc/aiortc-whep-offer.sdp
    python3 tools/webrtc/aiortc_offer.py whip > Fixtures/webrtc/aiortc-whip-offer.sdp
"""
import asyncio
import sys

from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack


async def offer(kind: str) -> str:
    pc = RTCPeerConnection()
    if kind == "whep":
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
    elif kind == "whip":
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    else:
        raise SystemExit("usage: aiortc_offer.py whep|whip")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


if __name__ == "__main__":
    sys.stdout.write(asyncio.run(offer(sys.argv[1] if len(sys.argv) > 1 else "")))
