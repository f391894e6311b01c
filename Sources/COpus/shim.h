// COpus: the system libopus (Debian/Ubuntu: libopus-dev). pkg-config's `opus` cflags add
// -I/usr/include/opus, so <opus.h> resolves to /usr/include/opus/opus.h.
//
// opus_encoder_ctl and opus_decoder_ctl are variadic, which Swift cannot call; the few
// requests AirwaveMedia needs are wrapped below as non-variadic inline functions.
#ifndef AIRWAVE_COPUS_SHIM_H
#define AIRWAVE_COPUS_SHIM_H

#include <opus.h>

static inline int airwave_opus_encoder_set_bitrate(OpusEncoder *encoder, opus_int32 bitsPerSecond) {
    return opus_encoder_ctl(encoder, OPUS_SET_BITRATE(bitsPerSecond));
}

static inline int airwave_opus_encoder_set_complexity(OpusEncoder *encoder, opus_int32 complexity) {
    return opus_encoder_ctl(encoder, OPUS_SET_COMPLEXITY(complexity));
}

static inline int airwave_opus_encoder_reset(OpusEncoder *encoder) {
    return opus_encoder_ctl(encoder, OPUS_RESET_STATE);
}

static inline int airwave_opus_decoder_reset(OpusDecoder *decoder) {
    return opus_decoder_ctl(decoder, OPUS_RESET_STATE);
}

#endif
