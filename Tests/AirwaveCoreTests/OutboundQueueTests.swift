import AirwaveCore
import AirwaveProtocol
import AirwaveTestSupport
import Testing

private func at(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: ms) }

private func nothingDropped<Item>(_ result: OutboundQueue<Item>.PushResult) -> Bool {
    result.droppedAudio == 0 && result.droppedScreen == 0
}

/// Pops everything, returning the items in order.
private func drainAll<Item>(_ queue: inout OutboundQueue<Item>) -> [Item] {
    var items: [Item] = []
    while let (item, _) = queue.pop() { items.append(item) }
    return items
}

/// The bounded send queue of one connection (PROTOCOL.md section 6).
@Suite("OutboundQueue")
struct OutboundQueueTests {
    @Test func underTheLimitNothingIsDroppedAndPopIsFIFO() {
        var queue = OutboundQueue<String>(limit: 1000)
        #expect(queue.isEmpty)
        let pushes: [(String, OutboundQueue<String>.Class, Int)] = [
            ("control-1", .control, 100), ("audio-1", .audio, 200), ("key-1", .screen(keyframe: true), 300),
            ("delta-1", .screen(keyframe: false), 150), ("audio-2", .audio, 50), ("control-2", .control, 200),
        ]
        for (item, itemClass, size) in pushes {
            let result = queue.push(item, class: itemClass, size: size, now: at(0))
            #expect(nothingDropped(result))
        }
        #expect(queue.bytes == 1000)  // exactly at the bound is not over it
        #expect(queue.congestedSince == nil)
        #expect(!queue.skippingScreen)
        #expect(!queue.isEmpty)
        var popped: [String] = []
        var sizes: [Int] = []
        while let (item, size) = queue.pop() {
            popped.append(item)
            sizes.append(size)
        }
        #expect(popped == pushes.map(\.0))
        #expect(sizes == pushes.map(\.2))
        #expect(queue.bytes == 0)
        #expect(queue.isEmpty)
        #expect(queue.pop() == nil)
    }

    @Test func overTheLimitTheOldestAudioGoesFirstAndControlNever() {
        var queue = OutboundQueue<String>(limit: 1000)
        _ = queue.push("c1", class: .control, size: 300, now: at(0))
        _ = queue.push("a1", class: .audio, size: 200, now: at(0))
        _ = queue.push("c2", class: .control, size: 100, now: at(0))
        _ = queue.push("a2", class: .audio, size: 200, now: at(0))
        _ = queue.push("a3", class: .audio, size: 200, now: at(0))
        #expect(queue.bytes == 1000)
        // 150 over: a1 alone makes room.
        let first = queue.push("c3", class: .control, size: 150, now: at(10))
        #expect(first.droppedAudio == 1)
        #expect(first.droppedScreen == 0)
        #expect(queue.bytes == 950)
        // 350 over: a2 and a3 go, oldest first, and the new audio stays.
        let second = queue.push("a4", class: .audio, size: 400, now: at(20))
        #expect(second.droppedAudio == 2)
        #expect(queue.bytes == 950)
        // No audio left but the new one: a control message over the bound drops a4 and is kept itself.
        let third = queue.push("c4", class: .control, size: 500, now: at(30))
        #expect(third.droppedAudio == 1)
        #expect(queue.bytes == 1050)  // control items are never dropped, even over the bound
        let fourth = queue.push("c5", class: .control, size: 2000, now: at(40))
        #expect(nothingDropped(fourth))
        #expect(queue.bytes == 3050)
        #expect(drainAll(&queue) == ["c1", "c2", "c3", "c4", "c5"])
        #expect(queue.bytes == 0)
    }

    @Test func newAudioIsDroppedOnlyWhenNoOlderAudioIsLeft() {
        var queue = OutboundQueue<String>(limit: 500)
        _ = queue.push("c1", class: .control, size: 450, now: at(0))
        _ = queue.push("a1", class: .audio, size: 40, now: at(0))
        let result = queue.push("a2", class: .audio, size: 40, now: at(0))
        #expect(result.droppedAudio == 1)
        #expect(drainAll(&queue) == ["c1", "a2"])
    }

    @Test func aScreenDeltaThatDoesNotFitStartsASkipUntilTheNextKeyframe() {
        var queue = OutboundQueue<String>(limit: 1000)
        _ = queue.push("key-1", class: .screen(keyframe: true), size: 600, now: at(0))
        _ = queue.push("delta-1", class: .screen(keyframe: false), size: 300, now: at(0))
        // Does not fit and there is no audio to drop: the delta is dropped and the skip starts.
        let overflow = queue.push("delta-2", class: .screen(keyframe: false), size: 200, now: at(10))
        #expect(overflow.droppedScreen == 1)
        #expect(overflow.droppedAudio == 0)
        #expect(queue.skippingScreen)
        #expect(queue.bytes == 900)
        // Room again, but a delta after a dropped one cannot be decoded: still skipped.
        #expect(queue.pop()?.item == "key-1")
        let skipped = queue.push("delta-3", class: .screen(keyframe: false), size: 10, now: at(20))
        #expect(skipped.droppedScreen == 1)
        #expect(queue.bytes == 300)
        // Audio and control still go through while screen deltas are skipped.
        #expect(nothingDropped(queue.push("audio-1", class: .audio, size: 10, now: at(20))))
        #expect(nothingDropped(queue.push("control-1", class: .control, size: 10, now: at(20))))
        // The next keyframe is taken and ends the skip; deltas after it are taken again.
        #expect(nothingDropped(queue.push("key-2", class: .screen(keyframe: true), size: 400, now: at(30))))
        #expect(!queue.skippingScreen)
        #expect(nothingDropped(queue.push("delta-4", class: .screen(keyframe: false), size: 100, now: at(40))))
        #expect(drainAll(&queue) == ["delta-1", "audio-1", "control-1", "key-2", "delta-4"])
    }

    @Test func audioIsDroppedBeforeAScreenDelta() {
        var queue = OutboundQueue<String>(limit: 1000)
        _ = queue.push("a1", class: .audio, size: 300, now: at(0))
        _ = queue.push("key", class: .screen(keyframe: true), size: 600, now: at(0))
        let result = queue.push("delta", class: .screen(keyframe: false), size: 200, now: at(0))
        #expect(result.droppedAudio == 1)
        #expect(result.droppedScreen == 0)
        #expect(!queue.skippingScreen)
        #expect(drainAll(&queue) == ["key", "delta"])
    }

    @Test func aKeyframeIsNeverSkipped() {
        var queue = OutboundQueue<String>(limit: 1000)
        _ = queue.push("c", class: .control, size: 900, now: at(0))
        let result = queue.push("key", class: .screen(keyframe: true), size: 500, now: at(0))
        #expect(nothingDropped(result))
        #expect(queue.bytes == 1400)
        #expect(drainAll(&queue) == ["c", "key"])
    }

    @Test func congestionStartsOverTheBoundAndEndsOnlyAtHalf() {
        var queue = OutboundQueue<Int>(limit: 1000, patience: .seconds(10))
        for i in 0..<10 { _ = queue.push(i, class: .control, size: 100, now: at(1000)) }
        #expect(queue.congestedSince == nil)  // at the bound, not over it
        #expect(!queue.isTooSlow(now: at(1_000_000)))
        _ = queue.push(10, class: .control, size: 100, now: at(2000))
        #expect(queue.congestedSince == at(2000))
        // A later push over the bound keeps the first time.
        _ = queue.push(11, class: .control, size: 100, now: at(3000))
        #expect(queue.congestedSince == at(2000))
        // Draining below the bound but above half does not end congestion (1200 → 600 bytes).
        for _ in 0..<6 { _ = queue.pop() }
        #expect(queue.bytes == 600)
        #expect(queue.congestedSince == at(2000))
        #expect(!queue.isTooSlow(now: at(11_999)))
        #expect(queue.isTooSlow(now: at(12_000)))
        _ = queue.pop()
        #expect(queue.bytes == 500)  // exactly half
        #expect(queue.congestedSince == nil)
        #expect(!queue.isTooSlow(now: at(1_000_000)))
        // Over again: a new congestion starts at the new time.
        for i in 20..<26 { _ = queue.push(i, class: .control, size: 100, now: at(20_000)) }
        #expect(queue.congestedSince == at(20_000))
        #expect(!queue.isTooSlow(now: at(29_999)))
        #expect(queue.isTooSlow(now: at(30_000)))
    }

    @Test func congestionIsNotedEvenWhenDroppingAudioMadeRoom() {
        var queue = OutboundQueue<String>(limit: 1000, patience: .milliseconds(500))
        _ = queue.push("a1", class: .audio, size: 600, now: at(100))
        _ = queue.push("a2", class: .audio, size: 600, now: at(200))
        #expect(queue.bytes == 600)
        #expect(queue.congestedSince == at(200))
        #expect(!queue.isTooSlow(now: at(699)))
        #expect(queue.isTooSlow(now: at(700)))
        #expect(queue.pop()?.item == "a2")
        #expect(queue.congestedSince == nil)
    }

    @Test func holesLeftByDroppedAudioAreSkipped() {
        var queue = OutboundQueue<String>(limit: 1000)
        _ = queue.push("a1", class: .audio, size: 100, now: at(0))
        _ = queue.push("c1", class: .control, size: 100, now: at(0))
        _ = queue.push("a2", class: .audio, size: 100, now: at(0))
        _ = queue.push("a3", class: .audio, size: 100, now: at(0))
        _ = queue.push("c2", class: .control, size: 500, now: at(0))
        // 250 over: a1, a2 and a3 go, leaving holes at the head and in the middle of the queue.
        let result = queue.push("c3", class: .control, size: 350, now: at(0))
        #expect(result.droppedAudio == 3)
        #expect(queue.bytes == 950)
        #expect(queue.pop()?.item == "c1")
        #expect(queue.pop()?.item == "c2")
        #expect(queue.pop()?.item == "c3")
        #expect(queue.pop() == nil)
        #expect(queue.isEmpty)
        #expect(queue.bytes == 0)
    }

    @Test func aQueueLeftWithOnlyHolesIsEmpty() {
        // The newest item is the only audio: it is dropped, and the hole it leaves is at the tail.
        var queue = OutboundQueue<String>(limit: 100)
        _ = queue.push("c1", class: .control, size: 90, now: at(0))
        let result = queue.push("a1", class: .audio, size: 20, now: at(0))
        #expect(result.droppedAudio == 1)
        #expect(queue.pop()?.item == "c1")
        #expect(queue.isEmpty, "nothing waits once c1 is written")
        #expect(queue.pop() == nil)
        #expect(queue.isEmpty)

        // A single audio item larger than the bound drops the older audio and itself.
        var other = OutboundQueue<String>(limit: 100)
        _ = other.push("a1", class: .audio, size: 60, now: at(0))
        let both = other.push("a2", class: .audio, size: 150, now: at(0))
        #expect(both.droppedAudio == 2)
        #expect(other.bytes == 0)
        #expect(other.isEmpty, "every item was dropped")
        #expect(other.pop() == nil)
        #expect(nothingDropped(other.push("c", class: .control, size: 10, now: at(1))))
        #expect(drainAll(&other) == ["c"])
    }

    /// The lag an edge's link reports (`airwave_link_lag_seconds`): the age of the oldest item
    /// still waiting, past the holes dropped audio leaves, and zero once drained.
    @Test func lagIsTheAgeOfTheOldestWaitingItemAndZeroWhenDrained() {
        var queue = OutboundQueue<String>(limit: 1000)
        #expect(queue.lag(now: at(5000)) == .zero, "an empty queue is not behind")
        _ = queue.push("a1", class: .audio, size: 400, now: at(1000))
        _ = queue.push("c1", class: .control, size: 400, now: at(1250))
        _ = queue.push("c2", class: .control, size: 100, now: at(1400))
        #expect(queue.lag(now: at(1500)) == .milliseconds(500), "a1 has waited 500 ms")
        // Over the bound: a1 is dropped, leaving a hole at the head; c1 is now the oldest.
        #expect(queue.push("c3", class: .control, size: 200, now: at(1600)).droppedAudio == 1)
        #expect(queue.lag(now: at(1600)) == .milliseconds(350))
        #expect(queue.pop()?.item == "c1")
        #expect(queue.lag(now: at(1700)) == .milliseconds(300), "c2 is the oldest left")
        #expect(queue.lag(now: at(1300)) == .zero, "a clock read before the push is no negative lag")
        _ = drainAll(&queue)
        #expect(queue.lag(now: at(9000)) == .zero, "drained")
    }

    /// Random pushes and pops checked step by step against `ReferenceQueue`. Sizes up to a tenth
    /// of the limit keep the queue short and the drop rules busy; sizes of 0–2 bytes under a limit
    /// of 1800–2000 keep thousands of items waiting, so the storage is compacted while items wait.
    @Test(arguments: [(UInt64(1), 1000, 100), (UInt64(2), 4000, 400), (UInt64(3), 20_000, 2000), (UInt64(4), 300, 30),
                      (UInt64(5), 2000, 2), (UInt64(6), 1800, 2)])
    func bytesStayExactAgainstAReferenceModel(seed: UInt64, limit: Int, maxSize: Int) {
        var random = SplitMix64(seed: seed)
        var queue = OutboundQueue<Int>(limit: limit, patience: .seconds(10))
        var model = ReferenceQueue(limit: limit)
        var now: Int64 = 0
        var nextItem = 0
        var droppedAudio = 0
        var droppedScreen = 0
        var longest = 0
        for step in 0..<40_000 {
            now += Int64(random.next(below: 20))
            // Phases that fill the queue and phases that drain it, so the queue both stays long
            // (many pops without emptying) and empties now and then.
            let pushChance = maxSize < 10 ? ((step / 5000) % 2 == 0 ? 60 : 45) : ((step / 2500) % 2 == 0 ? 70 : 40)
            if random.next(below: 100) < pushChance {
                let itemClass: OutboundQueue<Int>.Class
                switch random.next(below: 10) {
                case 0: itemClass = .control
                case 1...5: itemClass = .audio
                case 6: itemClass = .screen(keyframe: true)
                default: itemClass = .screen(keyframe: false)
                }
                let size = random.next(below: maxSize + 1)
                nextItem += 1
                let actual = queue.push(nextItem, class: itemClass, size: size, now: at(now))
                let expected = model.push(nextItem, class: itemClass, size: size, now: now)
                droppedAudio += actual.droppedAudio
                droppedScreen += actual.droppedScreen
                longest = max(longest, model.items.count)
                #expect(actual.droppedAudio == expected.audio && actual.droppedScreen == expected.screen,
                        "seed \(seed) step \(step): push result \(actual), model \(expected)")
            } else {
                let actual = queue.pop()
                let expected = model.pop()
                #expect(actual?.item == expected?.item && actual?.size == expected?.size,
                        "seed \(seed) step \(step): pop \(String(describing: actual)), model \(String(describing: expected))")
            }
            guard queue.bytes == model.bytes, queue.isEmpty == model.items.isEmpty, queue.skippingScreen == model.skipping,
                queue.congestedSince == model.congestedSince.map(at)
            else {
                Issue.record("""
                    seed \(seed) step \(step): bytes \(queue.bytes) vs \(model.bytes), isEmpty \(queue.isEmpty) vs \(model.items.isEmpty), \
                    skipping \(queue.skippingScreen) vs \(model.skipping), congestedSince \(String(describing: queue.congestedSince)) \
                    vs \(String(describing: model.congestedSince))
                    """)
                return
            }
            if step % 1000 == 0 { #expect(model.bytes == model.items.reduce(0) { $0 + $1.size }) }
        }
        // The run did exercise the drop rules, and the long runs kept thousands of items waiting.
        if maxSize < 10 {
            #expect(longest > 1500 && droppedAudio > 100, "longest queue \(longest), dropped audio \(droppedAudio)")
        } else {
            #expect(droppedAudio > 100 && droppedScreen > 100, "dropped audio \(droppedAudio), screen \(droppedScreen)")
        }
        #expect(drainAll(&queue) == model.items.map(\.item))
        #expect(queue.bytes == 0)
        #expect(queue.isEmpty)
    }
}

/// PROTOCOL.md section 6 written the plain way: the waiting items oldest first (`items[head...]`),
/// a dropped item removed from the array.
private struct ReferenceQueue {
    let limit: Int
    private var storage: [(item: Int, itemClass: OutboundQueue<Int>.Class, size: Int)] = []
    private var head = 0
    private(set) var bytes = 0
    var skipping = false
    var congestedSince: Int64?

    init(limit: Int) { self.limit = limit }

    var items: ArraySlice<(item: Int, itemClass: OutboundQueue<Int>.Class, size: Int)> { storage[head...] }

    mutating func push(_ item: Int, class itemClass: OutboundQueue<Int>.Class, size: Int, now: Int64) -> (audio: Int, screen: Int) {
        if case .screen(let keyframe) = itemClass {
            if keyframe {
                skipping = false
            } else if skipping {
                return (0, 1)
            }
        }
        storage.append((item, itemClass, size))
        bytes += size
        guard bytes > limit else { return (0, 0) }
        if congestedSince == nil { congestedSince = now }
        var audio = 0
        while bytes > limit, let oldest = storage[head...].firstIndex(where: { $0.itemClass == .audio }) {
            bytes -= storage.remove(at: oldest).size
            audio += 1
        }
        if bytes > limit, case .screen(keyframe: false) = itemClass {
            bytes -= storage.removeLast().size
            skipping = true
            return (audio, 1)
        }
        return (audio, 0)
    }

    mutating func pop() -> (item: Int, size: Int)? {
        guard head < storage.count else { return nil }
        let first = storage[head]
        head += 1
        if head > 4096 {
            storage.removeFirst(head)
            head = 0
        }
        bytes -= first.size
        if bytes * 2 <= limit { congestedSince = nil }
        return (first.item, first.size)
    }
}
