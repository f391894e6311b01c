/// Tunables of one live event; the defaults are PROTOCOL.md's.
public struct LiveEventConfiguration: Sendable, Hashable {
    /// How long a dropped host (or co-host) keeps its role before the event ends (or the role lapses).
    public var hostGrace: Duration = .seconds(30)
    /// How long an unanswered co-host invite stays valid.
    public var inviteLifetime: Duration = .seconds(60)
    /// At most one `participant_list` and one `participant_count` per this interval.
    public var noticeInterval: Duration = .seconds(1)
    /// Above this many participants, `participant_joined` / `participant_left` are not sent one by one.
    public var individualNoticeLimit: Int = 200
    /// Above this many listeners, `participant_list` is truncated to the most recent ones.
    public var listListenerLimit: Int = 1000
    /// Every this many participants stretch the `participant_list` interval by one more
    /// `noticeInterval`: the list is up to 1,000 entries sent to everyone, so a 10,000-listener
    /// event gets it every 10 s instead of 10 GB of lists a minute. The count stays at 1 s.
    public var listIntervalStep: Int = 1000
    /// Chat messages replayed to a joiner.
    public var chatHistoryLimit: Int = 100
    /// At most one `keyframe_request` forwarded to the host per this interval.
    public var keyframeRequestInterval: Duration = .seconds(1)

    /// Largest screen GOP cache replayed to late joiners (PROTOCOL.md 2.4: 4 MiB).
    public var screenCacheLimit: Int = 4 * 1024 * 1024

    /// Most recordings one event may make; `recording_start` beyond it gets `quota_exceeded`.
    public var recordingLimit: Int = 20

    public init() {}
}
