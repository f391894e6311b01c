// CSRTP: the system libsrtp2 (Debian/Ubuntu: libsrtp2-dev), used only by AirwaveWebRTCTests as
// the reference the OpenSSL SRTP code is compared with byte for byte.
#ifndef AIRWAVE_CSRTP_SHIM_H
#define AIRWAVE_CSRTP_SHIM_H

#include <srtp2/srtp.h>

#endif
