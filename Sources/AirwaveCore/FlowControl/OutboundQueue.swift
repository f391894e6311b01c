import AirwaveProtocol

/// The bounded send queue of one connection (PROTOCOL.md section 6), as a pure policy: what
/// waits while the socket cannot take more, what is dropped when the bound is reached, and
/// when the connection has been too slow for too long.
///
/// Control messages (and screen config frames) are never dropped. Over the bound, the oldest
/// queued audio goes first; a screen delta that does not fit starts a skip that lasts until the
/// next keyframe. A connection that stays congested (over the bound, not yet drained to half of
/// it) for `patience` is to be closed with `too_slow`.
public struct OutboundQueue<Item> {
    /// How a queued item may be treated.
    public enum Class: Sendable, Hashable {
        case control
        case audio
        case screen(keyframe: Bool)
    }

    /// What pushing an item did.
    public struct PushResult: Sendable, Hashable {
        /// Audio items dropped to make room (oldest first), and screen items skipped.
        public var droppedAudio = 0
        public var droppedScreen = 0
    }

    private struct Entry {
        var itemClass: Class
        var size: Int
        var item: Item
        /// When it was pushed: `lag(now:)` is the age of the oldest waiting entry.
        var pushed: Timestamp
    }

    public let limit: Int
    public let patience: Duration
    private var entries: [Entry?] = []
    private var head = 0
    /// Entries not dropped and not popped (`entries` also holds the holes dropped audio leaves).
    private var waiting = 0
    public private(set) var bytes = 0
    /// Screen deltas are skipped until the next keyframe.
    public private(set) var skippingScreen = false
    /// Since when the queue has been at its bound without draining to half of it.
    public private(set) var congestedSince: Timestamp?

    public init(limit: Int = 512 * 1024, patience: Duration = .seconds(10)) {
        self.limit = limit
        self.patience = patience
    }

    /// Items waiting.
    public var isEmpty: Bool { waiting == 0 }

    /// Queues an item, dropping by the rules above if it does not fit.
    public mutating func push(_ item: Item, class itemClass: Class, size: Int, now: Timestamp) -> PushResult {
        var result = PushResult()
        if case .screen(let keyframe) = itemClass {
            if keyframe {
                skippingScreen = false
            } else if skippingScreen {
                result.droppedScreen += 1
                return result
            }
        }
        entries.append(Entry(itemClass: itemClass, size: size, item: item, pushed: now))
        waiting += 1
        bytes += size
        if bytes > limit {
            congestedSince = congestedSince ?? now
            var index = head
            while bytes > limit, index < entries.count {
                if let entry = entries[index], entry.itemClass == .audio {
                    entries[index] = nil
                    waiting -= 1
                    bytes -= entry.size
                    result.droppedAudio += 1
                }
                index += 1
            }
            if bytes > limit, case .screen(keyframe: false) = itemClass {
                // The new delta does not fit: drop it and every delta until the next keyframe.
                entries.removeLast()
                waiting -= 1
                bytes -= size
                result.droppedScreen += 1
                skippingScreen = true
            }
            if bytes * 2 <= limit { congestedSince = nil }
            if waiting == 0 {
                // Everything was dropped: no holes are left behind.
                entries.removeAll(keepingCapacity: true)
                head = 0
            }
        }
        return result
    }

    /// The oldest waiting item, or nil.
    public mutating func pop() -> (item: Item, size: Int)? {
        while head < entries.count {
            let entry = entries[head]
            entries[head] = nil
            head += 1
            if let entry {
                waiting -= 1
                bytes -= entry.size
                compactIfDrained()
                if bytes * 2 <= limit { congestedSince = nil }
                return (entry.item, entry.size)
            }
        }
        compactIfDrained()
        return nil
    }

    /// How long the oldest waiting item has waited, zero when nothing waits: how far the
    /// connection is behind its sender. It walks past the holes dropped audio left at the front,
    /// so it is for sampling (an edge's link once a second, `LinkLags`), not for every push.
    public func lag(now: Timestamp) -> Duration {
        guard waiting > 0 else { return .zero }
        var index = head
        while index < entries.count {
            if let entry = entries[index] { return max(.zero, now - entry.pushed) }
            index += 1
        }
        return .zero
    }

    /// True when the connection has been congested for longer than `patience`.
    public func isTooSlow(now: Timestamp) -> Bool {
        guard let congestedSince else { return false }
        return now - congestedSince >= patience
    }

    private mutating func compactIfDrained() {
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
