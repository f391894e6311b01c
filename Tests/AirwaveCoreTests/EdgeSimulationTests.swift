import AirwaveCore
import AirwaveProtocol
import AirwaveTestSupport
import NIOCore
import Testing

/// Seeded random runs of an edge against the contract the origin relies on: on each link, a
/// client's join goes up before anything of it and nothing of it after its leave; nothing goes
/// up while the link is down; every command is either sent up once, in the client's order, or
/// refused to its sender, or dropped with a client that left; local outputs name only clients.
@Suite("Edge simulation")
struct EdgeSimulationTests {
    @Test("random runs keep the link contract", arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomRuns(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var configuration = EdgeConfiguration()
        configuration.commandBufferLimit = 6
        configuration.perClientCommandLimit = 3
        configuration.idleLinger = .seconds(1_000_000)  // the run never ends by itself
        var edge = EdgeEvent(eventID: "ev1", now: Timestamp(milliseconds: 0), configuration: configuration)
        var now: Int64 = 0
        var linkUp = false
        var connecting = true
        // Clients here. The edge numbers clients 1, 2, … in join order and connections here are
        // 11, 12, … in the same order, so a client's number is its connection minus 10.
        var clients: Set<ConnectionID> = []
        var nextConnection: UInt64 = 10
        func number(_ connection: ConnectionID) -> UInt32 { UInt32(connection.rawValue - 10) }
        func connection(_ number: UInt32) -> ConnectionID { ConnectionID(UInt64(number) + 10) }
        // On the current link: numbers joined and not left.
        var joinedOnLink: Set<UInt32> = []
        // Numbers the origin holds (joined on some link, not left).
        var known: Set<UInt32> = []
        var admitted: Set<ConnectionID> = []
        // Commands that must still go up, per connection, in order.
        var owed: [ConnectionID: [LiveCommand]] = [:]
        var sequence = 0
        // What the run went through, so a seed that exercises nothing fails.
        var relinks = 0, refusals = 0, sentAfterWaiting = 0, welcomes = 0
        let snapshot = EdgeLinkMessage.Snapshot(
            streamState: LiveServerMessage.streamState(eventID: "ev1", mode: "audio", hostUserID: "h1", hostUsername: "Hana", screen: nil,
                                                       startedAt: Timestamp(milliseconds: 0)),
            chatHistory: LiveServerMessage.chatHistory([]), participantList: LiveServerMessage.participantList([], truncatedTotal: nil),
            participantCount: LiveServerMessage.participantCount(0))
        _ = edge.pollOutput()  // open_link

        for step in 0..<5000 {
            now += Int64(random.next(below: 300))
            let before = clients
            let input: EdgeEvent.Input
            var issued: (ConnectionID, LiveCommand)?
            switch random.next(below: 12) {
            case 0, 1:
                nextConnection += 1
                let connection = ConnectionID(nextConnection)
                clients.insert(connection)
                input = .join(connection, UserIdentity(userID: "u\(nextConnection)", username: "U", verified: random.next(below: 2) == 0))
            case 2:
                guard let connection = clients.randomElement(using: &random) else { continue }
                clients.remove(connection)
                admitted.remove(connection)
                owed[connection] = nil
                input = .disconnected(connection)
            case 3, 4, 5:
                guard let connection = clients.randomElement(using: &random) else { continue }
                sequence += 1
                let command = LiveCommand.chat("m\(sequence)")
                issued = (connection, command)
                input = .command(connection, command)
            case 6:
                guard let connection = clients.randomElement(using: &random) else { continue }
                input = .media(connection, MediaFrame(header: MediaFrameHeader(kind: .opus, sequence: UInt32(step), timestamp: 0), payload: ByteBuffer(bytes: [0xfc])))
            case 7:
                input = .linkDown
            case 8:
                guard connecting else { continue }
                input = .fromOrigin(.snapshot(snapshot))
            case 9:
                guard linkUp, let number = joinedOnLink.randomElement(using: &random) else { continue }
                input = .fromOrigin(.welcome(number))
            case 10:
                guard linkUp, let connection = clients.randomElement(using: &random), joinedOnLink.contains(number(connection)) else { continue }
                let number = number(connection)
                // The origin closes it (leave_room, replaced): it forgets the client first.
                clients.remove(connection)
                admitted.remove(connection)
                owed[connection] = nil
                known.remove(number)
                joinedOnLink.remove(number)
                input = .fromOrigin(.close(number, .normal))
            default:
                input = .tick
            }
            // The snapshot is the link coming up; a link down ends the link (an attempt may follow).
            if case .fromOrigin(.snapshot) = input {
                linkUp = true
                connecting = false
                joinedOnLink.removeAll()
            }
            if case .linkDown = input {
                linkUp = false
                connecting = false
                joinedOnLink.removeAll()
            }
            edge.handle(input, now: Timestamp(milliseconds: now))
            var sentCommands: [(ConnectionID, LiveCommand)] = []
            var refused: Set<ConnectionID> = []
            func fail(_ what: String) { Issue.record("seed \(seed) step \(step) (\(input)): \(what)") }
            while let output = edge.pollOutput() {
                switch output {
                case .openLink:
                    connecting = true
                    linkUp = false
                case .uplink(let message):
                    if !linkUp { fail("\(message) went up with no link") }
                    switch message {
                    case .join(let number, _), .mediaListenerJoined(let number, _, _, _), .segmenterSubscription(let number):
                        if joinedOnLink.contains(number) { fail("join \(number) twice on one link") }
                        joinedOnLink.insert(number)
                        known.insert(number)
                    case .leave(let number):
                        if !known.contains(number) { fail("leave \(number) the origin does not hold") }
                        if case .linkDown = input { fail("leave on link down") }
                        known.remove(number)
                        joinedOnLink.remove(number)
                    case .command(let number, let command):
                        if !joinedOnLink.contains(number) { fail("command for \(number) not joined on this link") }
                        sentCommands.append((connection(number), command))
                    case .media(let number, _):
                        if !joinedOnLink.contains(number) { fail("media for \(number) not joined on this link") }
                    case .keyframeRequest:
                        break
                    case .mixSubscription(let number):
                        if !joinedOnLink.contains(number) { fail("mix for \(number) not joined on this link") }
                    }
                case .send(_, let route), .forward(_, let route):
                    if case .one(let connection) = route.sockets, !before.contains(connection) { fail("a message for \(connection), no client") }
                    if case .send(let message, let route) = output, case .one(let connection) = route.sockets, message.errorCode == .rateLimited {
                        refused.insert(connection)
                    }
                case .admit(let connection):
                    if !clients.contains(connection) || admitted.contains(connection) { fail("admit \(connection)") }
                    admitted.insert(connection)
                    welcomes += 1
                case .close(let connection, _):
                    if !before.contains(connection) { fail("close \(connection), no client") }
                case .mediaDropped(let reason):
                    if reason == .linkDown, linkUp { fail("media dropped with the link up") }
                case .closeLink, .finished, .recordOrphanedEnd:
                    fail("\(output) with neither shutdown nor end")
                    return
                case .mixPacket, .mixSubscriber, .mixUnsubscriber, .sessionsDropSource:
                    fail("\(output) with no player and no mix from the origin")
                }
            }
            if case .fromOrigin(.snapshot) = input {
                // After a re-link the origin holds exactly the clients here: leaves went up for the rest.
                if known != Set(clients.map(number)) { fail("the origin holds \(known.sorted()), the edge has \(clients.map(number).sorted())") }
                relinks += 1
                sentAfterWaiting += sentCommands.count
            }
            refusals += refused.count
            if let (connection, command) = issued {
                if refused.contains(connection) {
                    if linkUp { fail("refused with the link up") }
                } else {
                    owed[connection, default: []].append(command)
                }
            }
            for (connection, command) in sentCommands {
                guard owed[connection]?.first == command else {
                    fail("\(command) of \(connection) out of order; owed \(owed[connection] ?? [])")
                    return
                }
                owed[connection]?.removeFirst()
            }
            if linkUp, let stuck = owed.first(where: { !$0.value.isEmpty }) {
                fail("\(stuck.value) of \(stuck.key) still owed with the link up")
                return
            }
        }
        #expect(relinks > 20 && refusals > 0 && sentAfterWaiting > 20 && welcomes > 20,
                "seed \(seed): \(relinks) links, \(refusals) refusals, \(sentAfterWaiting) commands sent after waiting, \(welcomes) welcomes")
    }
}
