"""A minimal Opus decoder for the end-to-end tests: ctypes against the system libopus
(libopus0). Only what the media tests need: create a decoder, decode one packet to s16 PCM."""

from __future__ import annotations

import array
import ctypes
import ctypes.util

OPUS_OK = 0
MAX_FRAME_SAMPLES = 5760  # 120 ms at 48 kHz, the longest an Opus packet can be

_lib = None


def library():
    """The loaded libopus; raises RuntimeError when the system has none."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("opus")
    if name is None:
        raise RuntimeError("libopus not found (install libopus0)")
    lib = ctypes.CDLL(name)
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int16),
                                ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    _lib = lib
    return lib


class OpusError(Exception):
    pass


class Decoder:
    """One libopus decoder (48 kHz unless told otherwise)."""

    def __init__(self, rate: int = 48000, channels: int = 1):
        self._lib = library()
        self.channels = channels
        err = ctypes.c_int(0)
        self._dec = self._lib.opus_decoder_create(rate, channels, ctypes.byref(err))
        if err.value != OPUS_OK or not self._dec:
            raise OpusError(f"opus_decoder_create: {self._lib.opus_strerror(err.value).decode()}")
        self._out = (ctypes.c_int16 * (MAX_FRAME_SAMPLES * channels))()

    def decode(self, packet: bytes) -> array.array:
        """Decodes one packet; returns the interleaved s16 samples ('h' array)."""
        if self._dec is None:
            raise OpusError("decoder closed")
        n = self._lib.opus_decode(self._dec, packet, len(packet), self._out, MAX_FRAME_SAMPLES, 0)
        if n < 0:
            raise OpusError(f"opus_decode: {self._lib.opus_strerror(n).decode()} ({n})")
        return array.array("h", bytes(memoryview(self._out).cast("B")[: n * self.channels * 2]))

    def close(self):
        if self._dec is not None:
            self._lib.opus_decoder_destroy(self._dec)
            self._dec = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
