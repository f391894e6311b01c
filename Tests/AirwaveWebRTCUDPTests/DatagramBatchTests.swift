import AirwaveWebRTC
import CAirwaveUDP
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import AirwaveWebRTCUDP

/// `DatagramBatch` over real loopback sockets.
@Suite struct DatagramBatchTests {
    /// More datagrams than one `sendmmsg` takes, with one larger than a slot among them,
    /// arrive whole and in order.
    @Test func everyDatagramArrivesInOrderAcrossBatchesAndOversizedOnes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let receiver = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 8192))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(continuation))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let descriptor = airwave_udp_bind("127.0.0.1", 0, 0, 1 << 20)
        try #require(descriptor >= 0)
        let batch = DatagramBatch(descriptor: descriptor)
        let port = try #require(receiver.localAddress?.port)
        let destination = try #require(TransportAddress(host: "127.0.0.1", port: UInt16(port)))
        var address = try #require(batch.address(destination))
        let count = Int(DatagramBatch.capacity) * 2 + 10
        var sent: [[UInt8]] = (0..<count).map { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8), 0xAB] }
        sent[70] = [UInt8](repeating: 7, count: Int(DatagramBatch.slotSize) + 100)
        var dropped = 0
        for datagram in sent { dropped += batch.append(datagram, to: &address) }
        dropped += batch.send()
        #expect(dropped == 0)
        #expect(batch.count == 0)
        let deadline = group.next().scheduleTask(in: .seconds(5)) { continuation.finish() }
        var received: [[UInt8]] = []
        for await datagram in stream {
            received.append(datagram)
            if received.count == sent.count { break }
        }
        deadline.cancel()
        #expect(received.map(\.count) == sent.map(\.count))
        let same = received == sent
        #expect(same, "the bytes and order of every datagram")
        close(descriptor)
        try await receiver.close()
        try await group.shutdownGracefully()
    }

    /// After its channel is closed a batch writes nothing (the descriptor may be another
    /// file's by then) and counts what it was given as dropped.
    @Test func aClosedBatchDropsWhatItIsGiven() throws {
        let descriptor = airwave_udp_bind("127.0.0.1", 0, 0, 1 << 16)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let batch = DatagramBatch(descriptor: descriptor)
        let destination = try #require(TransportAddress(host: "127.0.0.1", port: 9))
        var address = try #require(batch.address(destination))
        #expect(batch.append([1, 2, 3], to: &address) == 0)
        batch.close()
        #expect(batch.send() == 1)
        #expect(batch.append([4], to: &address) == 1)
        #expect(batch.count == 0)
    }

    /// An IPv4 socket cannot send to an IPv6 address; an IPv6 one sends to IPv4 v4-mapped.
    @Test func addressesFollowTheSocketsFamily() throws {
        let v4 = airwave_udp_bind("127.0.0.1", 0, 0, 1 << 16)
        let v6 = airwave_udp_bind("::1", 0, 0, 1 << 16)
        try #require(v4 >= 0)
        defer { close(v4) }
        let v4Batch = DatagramBatch(descriptor: v4)
        let ipv6 = try #require(TransportAddress(host: "::1", port: 9))
        let ipv4 = try #require(TransportAddress(host: "127.0.0.1", port: 9))
        #expect(v4Batch.address(ipv6) == nil)
        #expect(v4Batch.address(ipv4)?.length == socklen_t(MemoryLayout<sockaddr_in>.size))
        guard v6 >= 0 else { return }  // no IPv6 loopback here
        defer { close(v6) }
        #expect(DatagramBatch(descriptor: v6).address(ipv4)?.length == socklen_t(MemoryLayout<sockaddr_in6>.size))
    }
}
