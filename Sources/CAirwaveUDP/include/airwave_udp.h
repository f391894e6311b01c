#ifndef AIRWAVE_UDP_H
#define AIRWAVE_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// A UDP socket bound to `host` (numeric) and `port` (0: the kernel picks), non-blocking,
/// with SO_REUSEPORT when `reuse_port`, and send and receive buffers of `buffer_size` bytes.
/// Returns the descriptor, or -1 with errno set.
int airwave_udp_bind(const char *host, int port, int reuse_port, int buffer_size);

/// The address family of a bound socket (AF_INET or AF_INET6), or -1.
int airwave_udp_family(int fd);

/// A destination as the kernel takes it, made once per peer address.
typedef struct {
    struct sockaddr_storage storage;
    socklen_t length;
} airwave_udp_address;

/// Fills `out` with `ip` (4 or 16 bytes, network order) and `port` for a socket of `family`
/// (an IPv4 address on an IPv6 socket is v4-mapped). Returns 0, or -1 for an IPv6 address on an
/// IPv4 socket.
int airwave_udp_address_make(int family, const uint8_t *ip, int ip_length, uint16_t port,
                             airwave_udp_address *out);

/// Datagrams collected for one sendmmsg: `capacity` slots of `slot_size` bytes each.
typedef struct airwave_udp_batch airwave_udp_batch;

airwave_udp_batch *airwave_udp_batch_create(unsigned capacity, unsigned slot_size);
void airwave_udp_batch_destroy(airwave_udp_batch *batch);
/// Datagrams waiting in the batch.
unsigned airwave_udp_batch_count(const airwave_udp_batch *batch);
/// Whether the batch has no free slot.
int airwave_udp_batch_full(const airwave_udp_batch *batch);
/// Copies a datagram into the next slot: 1, or 0 if the batch is full or the datagram larger
/// than a slot.
int airwave_udp_batch_append(airwave_udp_batch *batch, const uint8_t *bytes, size_t length,
                             const airwave_udp_address *to);
/// Hands the waiting datagrams to the kernel (sendmmsg) and empties the batch. Returns how
/// many were not sent: all remaining ones when the socket buffer is full (EAGAIN), and each
/// one the kernel refused on its own (e.g. an unreachable address).
unsigned airwave_udp_batch_send(airwave_udp_batch *batch, int fd);

/// Forgets the waiting datagrams (the socket is gone).
void airwave_udp_batch_clear(airwave_udp_batch *batch);

/// Sends one datagram now (one too large for a batch slot). 1 if sent, 0 if not.
int airwave_udp_send(int fd, const uint8_t *bytes, size_t length, const airwave_udp_address *to);

#endif
