import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// The live Ogg stream of one mix output and the HTTP listeners who hear it (`GET /listen/`):
/// pages are built once (``OggPageStream``), framed as HTTP chunks once, and the same buffer goes
/// to every listener, one hop per event loop. A new listener gets the header pages, then the
/// next page. Owned by ``EventMix`` in the event's driver task.
struct OggHTTPOutput {
    private var stream: OggPageStream
    /// `OpusHead` and `OpusTags`, as one chunk.
    private let headers: ByteBuffer
    private var listeners = HTTPListenerGroups()
    /// The end page as a chunk, kept until the next packet changes it: an event that ends
    /// closes all its listeners at one point of the stream.
    private var endChunk: ByteBuffer?

    init(serialNumber: UInt32 = .random(in: 1...UInt32.max)) {
        stream = OggPageStream(serialNumber: serialNumber, tags: OpusTags(vendor: "airwave", comments: ["ENCODER=airwave event mix"]))
        headers = HTTPChunk.frame(stream.headerPages)
    }

    var isEmpty: Bool { listeners.count == 0 }

    /// Adds a listener: the header pages go to it now, the pages follow as they are made.
    mutating func add(_ listener: HTTPListener) {
        listeners.insert(listener)
        let headers = self.headers
        let now = Timestamp.now()
        listener.channel.eventLoop.execute { listener.deliver(headers, class: .control, now: now) }
    }

    mutating func remove(_ id: ConnectionID) {
        listeners.remove(id)
    }

    /// Ends the stream for one listener (the end page where the stream stands), and with it
    /// the response, and forgets it. False if it is not a listener of this output.
    mutating func finish(_ id: ConnectionID) -> Bool {
        guard let listener = listeners.remove(id) else { return false }
        listener.finish(currentEndChunk())
        return true
    }

    /// The listener moves to another output: this stream ends for it (the end page), and the
    /// response goes on with the next stream (a chained Ogg stream).
    mutating func handOver(_ id: ConnectionID) {
        guard let listener = listeners.remove(id) else { return }
        let end = currentEndChunk()
        let now = Timestamp.now()
        listener.channel.eventLoop.execute { listener.deliver(end, class: .control, now: now) }
    }

    private mutating func currentEndChunk() -> ByteBuffer {
        if let endChunk { return endChunk }
        let chunk = HTTPChunk.frame(stream.endPage())
        endChunk = chunk
        return chunk
    }

    /// Takes one 20 ms packet of the output; a completed page goes to every listener. Returns
    /// how many listeners a page went to and its size (nothing when no page was completed).
    mutating func append(_ packet: [UInt8], samples: Int) -> (recipients: Int, bytes: Int) {
        endChunk = nil
        guard let page = stream.append(packet, samples: samples) else { return (0, 0) }
        let chunk = HTTPChunk.frame(page)
        return (listeners.broadcast(chunk), chunk.readableBytes)
    }
}

/// HTTP listeners grouped by event loop, so a page costs one hop per loop.
struct HTTPListenerGroups {
    private struct Group {
        let loop: any EventLoop
        var members: [ConnectionID: HTTPListener] = [:]
    }

    private var groups: [ObjectIdentifier: Group] = [:]
    private var loopOf: [ConnectionID: ObjectIdentifier] = [:]

    var count: Int { loopOf.count }

    mutating func insert(_ listener: HTTPListener) {
        let key = ObjectIdentifier(listener.channel.eventLoop)
        groups[key, default: Group(loop: listener.channel.eventLoop)].members[listener.id] = listener
        loopOf[listener.id] = key
    }

    @discardableResult
    mutating func remove(_ id: ConnectionID) -> HTTPListener? {
        guard let key = loopOf.removeValue(forKey: id) else { return nil }
        let removed = groups[key]?.members.removeValue(forKey: id)
        if groups[key]?.members.isEmpty == true { groups[key] = nil }
        return removed
    }

    /// Writes the chunk to every listener as audio (the oldest waiting page is dropped first
    /// for a slow one). Returns how many listeners it went to.
    func broadcast(_ chunk: ByteBuffer) -> Int {
        let now = Timestamp.now()
        for group in groups.values {
            let members = Array(group.members.values)
            group.loop.execute {
                for listener in members { listener.deliver(chunk, class: .audio, now: now) }
            }
        }
        return count
    }
}
