#define _GNU_SOURCE
#include "airwave_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int airwave_udp_bind(const char *host, int port, int reuse_port, int buffer_size) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo *info = NULL;
    int status = getaddrinfo(host, service, &hints, &info);
    if (status != 0 || info == NULL) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(info->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(info);
        return -1;
    }
    int one = 1;
    if ((reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        || setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof buffer_size) != 0
        || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof buffer_size) != 0
        || bind(fd, info->ai_addr, info->ai_addrlen) != 0) {
        int saved = errno;
        close(fd);
        freeaddrinfo(info);
        errno = saved;
        return -1;
    }
    freeaddrinfo(info);
    return fd;
}

int airwave_udp_family(int fd) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) return -1;
    return address.ss_family;
}

int airwave_udp_address_make(int family, const uint8_t *ip, int ip_length, uint16_t port,
                             airwave_udp_address *out) {
    memset(out, 0, sizeof *out);
    if (family == AF_INET) {
        if (ip_length != 4) return -1;
        struct sockaddr_in *v4 = (struct sockaddr_in *)&out->storage;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        memcpy(&v4->sin_addr, ip, 4);
        out->length = sizeof *v4;
        return 0;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->storage;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    if (ip_length == 4) {
        v6->sin6_addr.s6_addr[10] = 0xFF;
        v6->sin6_addr.s6_addr[11] = 0xFF;
        memcpy(&v6->sin6_addr.s6_addr[12], ip, 4);
    } else if (ip_length == 16) {
        memcpy(&v6->sin6_addr, ip, 16);
    } else {
        return -1;
    }
    out->length = sizeof *v6;
    return 0;
}

struct airwave_udp_batch {
    unsigned capacity;
    unsigned slot_size;
    unsigned count;
    uint8_t *slots;
    struct iovec *iovecs;
    struct mmsghdr *messages;
    struct sockaddr_storage *addresses;
};

airwave_udp_batch *airwave_udp_batch_create(unsigned capacity, unsigned slot_size) {
    airwave_udp_batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL) return NULL;
    batch->capacity = capacity;
    batch->slot_size = slot_size;
    batch->slots = malloc((size_t)capacity * slot_size);
    batch->iovecs = calloc(capacity, sizeof *batch->iovecs);
    batch->messages = calloc(capacity, sizeof *batch->messages);
    batch->addresses = calloc(capacity, sizeof *batch->addresses);
    if (!batch->slots || !batch->iovecs || !batch->messages || !batch->addresses) {
        airwave_udp_batch_destroy(batch);
        return NULL;
    }
    for (unsigned index = 0; index < capacity; index++) {
        batch->iovecs[index].iov_base = batch->slots + (size_t)index * slot_size;
        batch->messages[index].msg_hdr.msg_iov = &batch->iovecs[index];
        batch->messages[index].msg_hdr.msg_iovlen = 1;
        batch->messages[index].msg_hdr.msg_name = &batch->addresses[index];
    }
    return batch;
}

void airwave_udp_batch_destroy(airwave_udp_batch *batch) {
    if (batch == NULL) return;
    free(batch->slots);
    free(batch->iovecs);
    free(batch->messages);
    free(batch->addresses);
    free(batch);
}

unsigned airwave_udp_batch_count(const airwave_udp_batch *batch) { return batch->count; }

int airwave_udp_batch_full(const airwave_udp_batch *batch) { return batch->count == batch->capacity; }

int airwave_udp_batch_append(airwave_udp_batch *batch, const uint8_t *bytes, size_t length,
                             const airwave_udp_address *to) {
    if (batch->count == batch->capacity || length > batch->slot_size) return 0;
    unsigned index = batch->count++;
    memcpy(batch->iovecs[index].iov_base, bytes, length);
    batch->iovecs[index].iov_len = length;
    memcpy(&batch->addresses[index], &to->storage, to->length);
    batch->messages[index].msg_hdr.msg_namelen = to->length;
    return 1;
}

unsigned airwave_udp_batch_send(airwave_udp_batch *batch, int fd) {
    unsigned sent = 0, dropped = 0;
    while (sent + dropped < batch->count) {
        unsigned offset = sent + dropped;
        int result = sendmmsg(fd, batch->messages + offset, batch->count - offset, 0);
        if (result > 0) {
            sent += (unsigned)result;
        } else if (result < 0 && errno == EINTR) {
            continue;
        } else if (result < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            dropped += batch->count - offset;  // the socket buffer is full: no backpressure in UDP
        } else {
            dropped += 1;  // this datagram's own failure (its address): go on with the next
        }
    }
    batch->count = 0;
    return dropped;
}

void airwave_udp_batch_clear(airwave_udp_batch *batch) { batch->count = 0; }

int airwave_udp_send(int fd, const uint8_t *bytes, size_t length, const airwave_udp_address *to) {
    for (;;) {
        ssize_t result = sendto(fd, bytes, length, 0, (const struct sockaddr *)&to->storage, to->length);
        if (result >= 0) return 1;
        if (errno != EINTR) return 0;
    }
}
