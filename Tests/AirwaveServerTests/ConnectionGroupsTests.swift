import AirwaveCore
import AirwaveProtocol
import Dispatch
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import AirwaveServer

/// `ConnectionGroups`, the per-loop fan-out: connections on two embedded event loops, each seen
/// through a `CountingEventLoop`, so that the hops (`execute` calls) are counted.
@Suite struct ConnectionGroupsTests {
    struct Member {
        let channel: EmbeddedChannel
        let connection: ClientConnection
    }

    let loops = [CountingEventLoop(EmbeddedEventLoop()), CountingEventLoop(EmbeddedEventLoop())]

    /// A connection on `loops[loop]`, its writes readable from its embedded channel.
    func member(_ id: UInt64, loop: Int) throws -> Member {
        let channel = EmbeddedChannel(loop: loops[loop].base)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        let connection = try ClientConnection(
            id: ConnectionID(id), channel: LoopViewChannel(channel, loop: loops[loop]), metrics: ServerMetrics(), queueLimit: 1 << 20)
        return Member(channel: channel, connection: connection)
    }

    func runLoops() {
        for loop in loops { loop.base.run() }
    }

    /// The start address of each buffer written to `channel`.
    func writtenStorage(_ channel: EmbeddedChannel) throws -> [UnsafeRawPointer?] {
        var addresses: [UnsafeRawPointer?] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            addresses.append(buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) })
        }
        return addresses
    }

    @Test func aBroadcastIsOneExecutePerLoopAndTheSameBufferForEveryMember() throws {
        var groups = ConnectionGroups()
        let members = try [member(1, loop: 0), member(2, loop: 0), member(3, loop: 0), member(4, loop: 1), member(5, loop: 1)]
        for member in members { groups.insert(member.connection) }
        #expect(groups.count == 5)
        let frame = WebSocketWire.frame(opcode: WebSocketWire.binary, payload: ByteBuffer(bytes: Array(repeating: 7, count: 300)))
        let frameStorage = frame.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }

        #expect(groups.broadcast(frame, class: .audio) == 5)
        #expect(loops.map(\.executes) == [1, 1])
        for member in members { #expect(try writtenStorage(member.channel) == [], "nothing is written before the loop runs") }
        runLoops()
        for member in members {
            // The very buffer that was built once: no copy per connection.
            #expect(try writtenStorage(member.channel) == [frameStorage])
        }
    }

    @Test func exceptAndSkippingLeaveThoseMembersOutAndALoopWithNobodyLeftIsNotVisited() throws {
        var groups = ConnectionGroups()
        let members = try [member(1, loop: 0), member(2, loop: 0), member(3, loop: 1)]
        for member in members { groups.insert(member.connection) }
        let frame = WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: "hi"))

        #expect(groups.broadcast(frame, except: ConnectionID(1), skipping: [ConnectionID(3)]) == 1)
        #expect(loops.map(\.executes) == [1, 0])
        runLoops()
        #expect(try members.map { try WireFrame.written($0.channel).map(\.text) } == [[], ["hi"], []])
    }

    @Test func aListOfMembersIsOneExecutePerLoopAndStrangersAreSkipped() throws {
        var groups = ConnectionGroups()
        let members = try [member(1, loop: 0), member(2, loop: 0), member(3, loop: 1), member(4, loop: 1)]
        for member in members { groups.insert(member.connection) }
        let frame = WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: "mix"))

        #expect(groups.deliver(frame, to: .only([ConnectionID(1), ConnectionID(2), ConnectionID(4), ConnectionID(9)]), class: .audio) == 3)
        #expect(loops.map(\.executes) == [1, 1])
        runLoops()
        #expect(try members.map { try WireFrame.written($0.channel).map(\.text) } == [["mix"], ["mix"], [], ["mix"]])
    }

    @Test func sendReachesOneMemberAndRemovalEmptiesItsLoop() throws {
        var groups = ConnectionGroups()
        let members = try [member(1, loop: 0), member(2, loop: 1)]
        for member in members { groups.insert(member.connection) }
        let frame = WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: "to 2"))

        #expect(groups.send(frame, class: .control, to: ConnectionID(2)))
        #expect(!groups.send(frame, class: .control, to: ConnectionID(9)))
        #expect(loops.map(\.executes) == [0, 1])
        runLoops()
        #expect(try WireFrame.written(members[1].channel).map(\.text) == ["to 2"])

        #expect(groups.remove(ConnectionID(2)) === members[1].connection)
        #expect(groups.remove(ConnectionID(2)) == nil)
        #expect(groups[ConnectionID(2)] == nil && groups[ConnectionID(1)] === members[0].connection)
        #expect(groups.count == 1 && groups.all.map(\.id) == [ConnectionID(1)])
        #expect(groups.broadcast(frame) == 1)
        #expect(loops.map(\.executes) == [1, 1], "the emptied loop gets no hop")
    }
}

/// An event loop that counts `execute` calls and runs everything on `base`.
final class CountingEventLoop: EventLoop, @unchecked Sendable {
    let base: EmbeddedEventLoop
    private let count = Atomic<Int>(0)

    init(_ base: EmbeddedEventLoop) {
        self.base = base
    }

    var executes: Int { count.load(ordering: .relaxed) }
    var inEventLoop: Bool { base.inEventLoop }
    var now: NIODeadline { base.now }

    func execute(_ task: @escaping @Sendable () -> Void) {
        count.add(1, ordering: .relaxed)
        base.execute(task)
    }

    func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        base.scheduleTask(deadline: deadline, task)
    }

    func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        base.scheduleTask(in: delay, task)
    }

    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        base.shutdownGracefully(queue: queue, callback)
    }
}

/// An `EmbeddedChannel` seen through another event loop (a `CountingEventLoop` on the channel's
/// own): `ConnectionGroups` groups and hops by `channel.eventLoop`.
final class LoopViewChannel: Channel, @unchecked Sendable {
    let base: EmbeddedChannel
    let eventLoop: any EventLoop

    init(_ base: EmbeddedChannel, loop: any EventLoop) {
        self.base = base
        eventLoop = loop
    }

    var allocator: ByteBufferAllocator { base.allocator }
    var closeFuture: EventLoopFuture<Void> { base.closeFuture }
    var pipeline: ChannelPipeline { base.pipeline }
    var localAddress: SocketAddress? { base.localAddress }
    var remoteAddress: SocketAddress? { base.remoteAddress }
    var parent: (any Channel)? { base.parent }
    var isWritable: Bool { base.isWritable }
    var isActive: Bool { base.isActive }
    var _channelCore: any ChannelCore { base._channelCore }
    var syncOptions: NIOSynchronousChannelOptions? { base.syncOptions }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        base.setOption(option, value: value)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        base.getOption(option)
    }
}
