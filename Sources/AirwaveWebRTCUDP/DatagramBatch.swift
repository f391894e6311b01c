import AirwaveWebRTC
import CAirwaveUDP

/// Datagrams written straight to a shard's UDP socket: copied into preallocated slots and handed
/// to the kernel with one `sendmmsg` per batch. NIO's channel still reads the socket; writing
/// past it saves, per datagram, a `ByteBuffer`, an `AddressedEnvelope` boxed in `NIOAny` and
/// the pending-write bookkeeping, which at thousands of WHEP listeners cost more than the
/// encryption (`docs/performance.md`). Confined to the shard's event loop.
final class DatagramBatch {
    /// Datagrams per `sendmmsg`.
    static let capacity: UInt32 = 64
    /// Bytes per slot: every RTP packet and DTLS record the sessions make fits; a larger datagram
    /// is sent on its own.
    static let slotSize: UInt32 = 2048

    private let batch: OpaquePointer
    /// The socket; -1 once its channel is closed (NIO closes the descriptor).
    private(set) var descriptor: Int32
    /// AF_INET or AF_INET6: how destinations are written.
    let family: Int32

    init(descriptor: Int32) {
        guard let batch = airwave_udp_batch_create(Self.capacity, Self.slotSize) else {
            fatalError("cannot allocate \(Self.capacity * Self.slotSize) bytes for a datagram batch")
        }
        self.batch = batch
        self.descriptor = descriptor
        family = airwave_udp_family(descriptor)
    }

    deinit {
        airwave_udp_batch_destroy(batch)
    }

    /// Datagrams waiting for `send`.
    var count: Int { Int(airwave_udp_batch_count(batch)) }

    /// The kernel's form of `address` for this socket, nil if the socket cannot reach it (an IPv6
    /// address on an IPv4 socket).
    func address(_ address: TransportAddress) -> airwave_udp_address? {
        var raw = airwave_udp_address()
        let ip = address.ipBytes
        guard airwave_udp_address_make(family, ip, Int32(ip.count), address.port, &raw) == 0 else { return nil }
        return raw
    }

    /// Queues a datagram; returns how many datagrams were dropped on the way (a full batch is
    /// sent first; 1 if this one could not be sent).
    func append(_ bytes: [UInt8], to address: inout airwave_udp_address) -> Int {
        guard descriptor >= 0 else { return 1 }
        var dropped = 0
        if airwave_udp_batch_full(batch) != 0 { dropped += send() }
        if bytes.withUnsafeBufferPointer({ airwave_udp_batch_append(batch, $0.baseAddress, $0.count, &address) }) == 1 {
            return dropped
        }
        // Larger than a slot: on its own, after what is queued.
        dropped += send()
        let sent = bytes.withUnsafeBufferPointer { airwave_udp_send(descriptor, $0.baseAddress, $0.count, &address) }
        return dropped + (sent == 1 ? 0 : 1)
    }

    /// Hands the queued datagrams to the kernel; returns how many it did not take (a full
    /// socket buffer, or an address it refused).
    func send() -> Int {
        guard descriptor >= 0 else {
            let dropped = count
            airwave_udp_batch_clear(batch)
            return dropped
        }
        return Int(airwave_udp_batch_send(batch, descriptor))
    }

    /// The socket is closed: nothing is written from now on.
    func close() {
        descriptor = -1
    }
}
