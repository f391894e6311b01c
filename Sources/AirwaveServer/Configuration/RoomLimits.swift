/// Limits on listening rooms (PROTOCOL.md section 10) and on what clients can store.
public struct RoomLimits: Sendable, Hashable {
    /// Most songs in a room's queue; one more is refused with `queue_full`.
    public var queueLimit = 500
    /// Most commands one connection may have waiting for its room; beyond, `rate_limited`.
    public var inboxPerConnection = 32
    /// Most commands waiting for one room from members who have one waiting already; beyond,
    /// `rate_limited` (a member with nothing waiting is always let in).
    public var inboxLimit = 1_024
    /// Most rooms one user may own through `POST /api/rooms`; beyond, HTTP 429 `quota_exceeded`.
    public var roomsPerUser = 20
    /// Most rooms without a host (opened by connecting to a new id), stored or open; beyond,
    /// connecting to a new id is refused with `quota_exceeded`. Empty ones are deleted when
    /// their last member leaves.
    public var guestRoomLimit = 10_000
    /// When `guestRoomLimit` is reached, guest rooms nothing was stored in for this long are
    /// deleted to make room.
    public var guestRoomIdle: Duration = .seconds(30 * 24 * 3600)

    public init() {}
}
