import AirwaveServer
import ArgumentParser

/// Flags of `RoomLimits` and the recording quota (PROTOCOL.md section 10; docs/security.md lists them).
struct RoomLimitOptions: ParsableArguments {
    @Option(name: .customLong("room-queue-limit"), help: "Most songs in a listening room's queue (default 500).") var roomQueueLimit: Int?
    @Option(name: .customLong("room-inbox-per-connection"), help: "Most messages one connection may have waiting for its listening room; more get rate_limited (default 32).") var roomInboxPerConnection: Int?
    @Option(name: .customLong("room-inbox-limit"), help: "Most messages waiting for one listening room from members with one waiting already (default 1024).") var roomInboxLimit: Int?
    @Option(name: .customLong("rooms-per-user"), help: "Most listening rooms one user may create with POST /api/rooms; more get 429 quota_exceeded (default 20).") var roomsPerUser: Int?
    @Option(name: .customLong("max-guest-rooms"), help: "Most listening rooms without a host (opened by connecting), stored or open (default 10000).") var maxGuestRooms: Int?
    @Option(name: .customLong("guest-room-idle-days"), help: "At the guest-room bound, rooms without a host unchanged for this many days are deleted to make room (default 30).") var guestRoomIdleDays: Int?
    @Option(name: .customLong("recordings-per-event"), help: "Most recordings one live event may make; more get quota_exceeded (default 20).") var recordingsPerEvent: Int?

    func apply(_ settings: Settings, to limits: inout RoomLimits) throws(ConfigurationError) {
        limits.queueLimit = try settings.positive("room-queue-limit", roomQueueLimit, default: limits.queueLimit)
        limits.inboxPerConnection = try settings.positive("room-inbox-per-connection", roomInboxPerConnection, default: limits.inboxPerConnection)
        limits.inboxLimit = try settings.positive("room-inbox-limit", roomInboxLimit, default: limits.inboxLimit)
        limits.roomsPerUser = try settings.positive("rooms-per-user", roomsPerUser, default: limits.roomsPerUser)
        limits.guestRoomLimit = try settings.positive("max-guest-rooms", maxGuestRooms, default: limits.guestRoomLimit)
        let idleDays = try settings.positive("guest-room-idle-days", guestRoomIdleDays, default: Int(limits.guestRoomIdle.components.seconds / 86_400))
        limits.guestRoomIdle = .seconds(idleDays * 86_400)
    }

    /// `--recordings-per-event`, which belongs to the live events' configuration:
    /// `apply(settings, recordingLimit: &configuration.liveEvent.recordingLimit)`.
    func apply(_ settings: Settings, recordingLimit: inout Int) throws(ConfigurationError) {
        recordingLimit = try settings.positive("recordings-per-event", recordingsPerEvent, default: recordingLimit)
    }
}
