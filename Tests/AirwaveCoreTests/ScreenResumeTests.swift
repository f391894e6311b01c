import AirwaveCore
import AirwaveProtocol
import Testing

/// A viewer who joins a screen share while the host is away gets its keyframe asked for as
/// soon as the host is back.
@Test func resumingHostIsAskedForAKeyframeOwedToViewers() throws {
    let host = UserIdentity(userID: "h1", username: "Hana", verified: true)
    var event = LiveEvent(eventID: "ev1", host: host, now: Timestamp(milliseconds: 0))
    func outputs(_ input: LiveEvent.Input, at ms: Int64) -> [LiveEvent.Output] {
        event.handle(input, now: Timestamp(milliseconds: ms))
        var all: [LiveEvent.Output] = []
        while let output = event.pollOutput() { all.append(output) }
        return all
    }
    func keyframeRequests(_ outputs: [LiveEvent.Output]) -> [LiveEvent.Audience] {
        outputs.compactMap { output in
            guard case .send(let message, let route) = output, message.type == .keyframeRequest else { return nil }
            return route.sockets
        }
    }
    _ = outputs(.hostConnected(ConnectionID(1), joinURL: "ws://x/"), at: 0)
    _ = outputs(.command(ConnectionID(1), .switchToScreen(ScreenConfig(codec: "vp8"))), at: 100)
    _ = outputs(.disconnected(ConnectionID(1)), at: 200)
    let joined = outputs(.join(ConnectionID(2), UserIdentity(userID: "u2", username: "Uma", verified: false)), at: 1500)
    #expect(keyframeRequests(joined).isEmpty, "nobody to ask while the host is away")
    let resumed = outputs(.hostConnected(ConnectionID(3), joinURL: "ws://x/"), at: 2000)
    #expect(keyframeRequests(resumed) == [.one(ConnectionID(3))])
}
