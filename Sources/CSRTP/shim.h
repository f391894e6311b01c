// CSRTP: the system libsrtp2 (Debian/Ubuntu: libsrtp2-dev), used by AirwaveWebRTC's SRTP
// session wrapper.
#ifndef AIRWAVE_CSRTP_SHIM_H
#define AIRWAVE_CSRTP_SHIM_H

#include <srtp2/srtp.h>

#endif
