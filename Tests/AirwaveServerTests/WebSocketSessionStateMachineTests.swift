import AirwaveProtocol
import AirwaveTestSupport
import NIOCore
import Testing

@testable import AirwaveServer

private typealias Machine = WebSocketSessionStateMachine

private func at(_ ms: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(ms) * 1_000_000) }

private func message(_ id: Int, text: Bool = true) -> Machine.Message {
    Machine.Message(isText: text, data: ByteBuffer(string: "m\(id)"))
}

private func closePayload(_ code: UInt16?, _ reason: [UInt8] = []) -> ByteBuffer {
    var buffer = ByteBuffer()
    if let code { buffer.writeInteger(code) }
    buffer.writeBytes(reason)
    return buffer
}

private func pong(_ value: UInt64) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(value)
    return buffer
}

/// An admitted machine with its ping clock started at 0.
private func openMachine(pingInterval: TimeAmount = .seconds(10)) -> Machine {
    var machine = Machine(pingInterval: pingInterval)
    _ = machine.start(now: at(0))
    _ = machine.admitted()
    return machine
}

/// `WebSocketSessionStateMachine`'s contract, event by event, with exact action lists.
@Suite struct WebSocketSessionStateMachineTests {
    @Test func startArmsThePingAndAnAdmittedMessageIsDeliveredOneAtATime() {
        var machine = Machine(pingInterval: .seconds(10))
        #expect(machine.start(now: at(5)) == [.schedule(.ping, at: at(10_005))])
        #expect(machine.phase == .admitting)
        #expect(machine.admitted() == [])
        #expect(machine.phase == .open)
        #expect(machine.messageReceived(message(1)) == [.deliver(message(1))])
        // A message that arrives while the last one is with the endpoint waits for its verdict.
        #expect(machine.messageReceived(message(2, text: false)) == [])
        #expect(machine.messageHandled(.keepReading, now: at(6)) == [.deliver(message(2, text: false))])
        #expect(machine.messageHandled(.keepReading, now: at(6)) == [])
    }

    @Test func messagesWaitForTheAdmissionInOrderAndReadingPausesAtTheLimit() {
        var machine = Machine(pingInterval: .seconds(10))
        for id in 1..<Machine.pendingLimit { #expect(machine.messageReceived(message(id)) == []) }
        #expect(machine.messageReceived(message(Machine.pendingLimit)) == [.pauseReading])
        #expect(machine.readPause == .admission)
        // Read in the same batch: still kept, no second pause.
        #expect(machine.messageReceived(message(Machine.pendingLimit + 1)) == [])
        // Reading resumes before the first delivery, then each verdict brings the next message.
        #expect(machine.admitted() == [.resumeReading, .deliver(message(1))])
        for id in 2...(Machine.pendingLimit + 1) {
            #expect(machine.messageHandled(.keepReading, now: at(0)) == [.deliver(message(id))])
        }
        #expect(machine.messageHandled(.keepReading, now: at(0)) == [])
    }

    @Test func anOverLimitVerdictPausesReadingAndDropsWhatWasReadWithIt() {
        var machine = Machine(pingInterval: .seconds(10))
        for id in 1...4 { _ = machine.messageReceived(message(id)) }
        #expect(machine.admitted() == [.deliver(message(1))])
        #expect(machine.messageHandled(.overLimit, now: at(1000)) == [
            .pauseReading, .schedule(.resumeReading, at: at(1100)),
            .countDroppedWhileOverLimit, .countDroppedWhileOverLimit, .countDroppedWhileOverLimit,
        ])
        #expect(machine.messageReceived(message(5)) == [.countDroppedWhileOverLimit])
        #expect(machine.timerFired(.resumeReading, now: at(1100), pingPayload: 0) == [.resumeReading])
        #expect(machine.readPause == .none)
        #expect(machine.messageReceived(message(6)) == [.deliver(message(6))])
        // A second over-limit verdict while paused does not pause twice.
        #expect(machine.messageHandled(.overLimit, now: at(1200)) == [.pauseReading, .schedule(.resumeReading, at: at(1300))])
        #expect(machine.messageReceived(message(7)) == [.countDroppedWhileOverLimit])
    }

    @Test func aStopVerdictDepartsAndClosesNormallyIfTheEndpointDoesNotWithinTheGrace() {
        var machine = openMachine()
        _ = machine.messageReceived(message(1))
        _ = machine.messageReceived(message(2))
        #expect(machine.messageHandled(.stop, now: at(500)) == [.depart, .schedule(.stopGrace, at: at(2500))])
        #expect(machine.phase == .closing)
        #expect(machine.messageReceived(message(3)) == [])
        #expect(machine.timerFired(.stopGrace, now: at(2500), pingPayload: 0) == [
            .sendClose(.normal, reason: nil, discardQueued: false), .schedule(.closeDeadline, at: at(7500)),
        ])
    }

    @Test func aStopVerdictAfterTheEndpointClosedSchedulesNothing() {
        var machine = openMachine()
        _ = machine.messageReceived(message(1))
        _ = machine.closeRequested(.goingAway, reason: "server_shutdown", timeout: .seconds(5), now: at(0))
        #expect(machine.messageHandled(.stop, now: at(1)) == [.depart])
        #expect(machine.timerFired(.stopGrace, now: at(2001), pingPayload: 0) == [])
    }

    @Test func aCloseVerdictDepartsAndSendsTheCode() {
        var machine = openMachine()
        _ = machine.messageReceived(message(1))
        #expect(machine.messageHandled(.close(.messageTooBig, reason: "text frame over 10 bytes"), now: at(0)) == [
            .depart, .sendClose(.messageTooBig, reason: "text frame over 10 bytes", discardQueued: false),
            .schedule(.closeDeadline, at: at(5000)),
        ])
    }

    @Test func pingsArePongedAndOnlyAnEchoOfOurPingCounts() {
        var machine = openMachine(pingInterval: .seconds(10))
        #expect(machine.pingReceived(ByteBuffer(string: "hey")) == [.writePong(ByteBuffer(string: "hey"))])
        #expect(machine.timerFired(.ping, now: at(10_000), pingPayload: 42) == [.sendPing(42), .schedule(.ping, at: at(20_000))])
        #expect(machine.outstandingPings == [42])
        // A blind pong, a stale one and a longer one do not count.
        for wrong in [ByteBuffer(), pong(41), ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 42, 0])] {
            #expect(machine.pongReceived(wrong) == [])
            #expect(machine.outstandingPings == [42])
        }
        #expect(machine.pongReceived(pong(42)) == [])
        #expect(machine.outstandingPings == [])
        #expect(machine.timerFired(.ping, now: at(20_000), pingPayload: 43) == [.sendPing(43), .schedule(.ping, at: at(30_000))])
        // One unanswered ping is not enough (PROTOCOL.md 6: two): a second one goes out.
        #expect(machine.timerFired(.ping, now: at(30_000), pingPayload: 44) == [.sendPing(44), .schedule(.ping, at: at(40_000))])
        #expect(machine.outstandingPings == [43, 44])
        // Two unanswered at the next tick: gone, with a short grace for the close handshake.
        #expect(machine.timerFired(.ping, now: at(40_000), pingPayload: 45) == [
            .countError("ping_timeout"), .depart, .sendClose(.goingAway, reason: "Ping timeout", discardQueued: false),
            .schedule(.closeDeadline, at: at(41_000)),
        ])
        // The ping clock stops once a close frame is out.
        #expect(machine.timerFired(.ping, now: at(50_000), pingPayload: 46) == [])
    }

    /// A peer whose loop is behind (a join storm on its machine) answers the first of two pings
    /// late: it stays. The host dropped in the 3,000-listener storm of issue 17 was one such peer,
    /// closed by the earlier rule (one unanswered ping).
    @Test func aLateAnswerToTheFirstOfTwoPingsKeepsTheConnection() {
        var machine = openMachine(pingInterval: .seconds(15))
        #expect(machine.timerFired(.ping, now: at(15_000), pingPayload: 7) == [.sendPing(7), .schedule(.ping, at: at(30_000))])
        #expect(machine.timerFired(.ping, now: at(30_000), pingPayload: 8) == [.sendPing(8), .schedule(.ping, at: at(45_000))])
        // 22 s after the first ping, its echo arrives.
        #expect(machine.pongReceived(pong(7)) == [])
        #expect(machine.outstandingPings == [])
        #expect(machine.timerFired(.ping, now: at(45_000), pingPayload: 9) == [.sendPing(9), .schedule(.ping, at: at(60_000))])
        #expect(machine.phase == .open)
    }

    @Test func pingsAreAnsweredWhileAdmittingAndAfterTheEndpointLeftButNotAfterACloseFrame() {
        var machine = Machine(pingInterval: .seconds(10))
        #expect(machine.pingReceived(ByteBuffer(string: "a")) == [.writePong(ByteBuffer(string: "a"))])
        #expect(machine.admitted() == [])
        _ = machine.messageReceived(message(1))
        _ = machine.messageHandled(.stop, now: at(0))
        #expect(machine.pingReceived(ByteBuffer(string: "b")) == [.writePong(ByteBuffer(string: "b"))])
        _ = machine.closeRequested(.normal, reason: nil, timeout: .seconds(5), now: at(0))
        #expect(machine.pingReceived(ByteBuffer(string: "c")) == [])
    }

    @Test func thePeersCloseIsAnsweredWithTheRightCodeAndTheSocketClosesOnceTheAnswerIsWritten() {
        let cases: [(ByteBuffer, CloseCode)] = [
            (closePayload(nil), .normal), (closePayload(1000), .normal), (closePayload(4000, Array("bye".utf8)), .normal),
            (closePayload(3000), .normal), (closePayload(1011), .normal),
            (ByteBuffer(bytes: [0x03]), .protocolError), (closePayload(999), .protocolError), (closePayload(1004), .protocolError),
            (closePayload(1005), .protocolError), (closePayload(1015), .protocolError), (closePayload(5000), .protocolError),
            (closePayload(1000, [0xFF, 0xFE]), .invalidPayload),
        ]
        for (payload, answer) in cases {
            var machine = openMachine()
            #expect(machine.peerClosed(payload, now: at(100)) == [
                .depart, .sendClose(answer, reason: nil, discardQueued: true), .schedule(.closeDeadline, at: at(5100)),
            ], "answer \(answer)")
            #expect(machine.handshake == .init(closedFirst: .client, code: answer, peerClosed: true))
            #expect(machine.messageReceived(message(1)) == [])
            #expect(machine.closeFrameWritten() == [.closeChannel])
            // Our own close asked for afterwards: the handshake is settled.
            #expect(machine.closeRequested(.goingAway, reason: nil, timeout: .seconds(5), now: at(200)) == [])
            #expect(machine.channelInactive() == [])
            #expect(machine.phase == .closed)
        }
    }

    @Test func whenWeCloseFirstTheSocketClosesOnceBothFramesCrossedInEitherOrder() {
        // Our frame written, then the peer's answer.
        var machine = openMachine()
        #expect(machine.closeRequested(.eventEnded, reason: "ended", timeout: .seconds(3), now: at(0)) == [
            .sendClose(.eventEnded, reason: "ended", discardQueued: false), .schedule(.closeDeadline, at: at(3000)),
        ])
        #expect(machine.phase == .closing)
        #expect(machine.messageReceived(message(1)) == [], "nothing is delivered after our close frame")
        #expect(machine.pongReceived(pong(1)) == [])
        #expect(machine.closeFrameWritten() == [])
        #expect(machine.peerClosed(closePayload(1000), now: at(10)) == [.depart, .closeChannel])
        // The peer's answer before our frame is written (it waits in the send queue).
        var crossed = openMachine()
        _ = crossed.closeRequested(.goingAway, reason: nil, timeout: .seconds(5), now: at(0))
        #expect(crossed.peerClosed(closePayload(1001), now: at(10)) == [.depart])
        #expect(crossed.closeFrameWritten() == [.closeChannel])
        #expect(crossed.closeFrameWritten() == [])
        #expect(crossed.peerClosed(closePayload(1001), now: at(20)) == [], "a second close of the peer changes nothing")
    }

    @Test func theCloseDeadlineClosesAPeerThatNeverAnswers() {
        var machine = openMachine()
        _ = machine.closeRequested(.normal, reason: nil, timeout: .seconds(5), now: at(0))
        _ = machine.closeFrameWritten()
        #expect(machine.timerFired(.closeDeadline, now: at(5000), pingPayload: 0) == [.closeChannel])
        #expect(machine.channelInactive() == [.depart])
        #expect(machine.timerFired(.closeDeadline, now: at(6000), pingPayload: 0) == [])
    }

    @Test func aViolationCountsLeavesAndClosesWithItsCodeOnce() {
        var machine = openMachine()
        let violation = WebSocketViolation(code: .messageTooBig, reason: "binary message over 10 bytes")
        #expect(machine.violation(violation, now: at(0)) == [
            .countError("socket_error"), .depart, .sendClose(.messageTooBig, reason: "binary message over 10 bytes", discardQueued: false),
            .schedule(.closeDeadline, at: at(2000)),
        ])
        #expect(machine.violation(violation, now: at(1)) == [.countError("socket_error")])
    }

    @Test func aConnectionThatGoesDuringAdmissionDepartsWhenAdmittedAndNotIfRefused() {
        var machine = Machine(pingInterval: .seconds(10))
        _ = machine.messageReceived(message(1))
        #expect(machine.peerClosed(closePayload(1000), now: at(0)) == [
            .sendClose(.normal, reason: nil, discardQueued: true), .schedule(.closeDeadline, at: at(5000)),
        ])
        #expect(machine.admitted() == [.depart], "the waiting message is not delivered")
        #expect(machine.admitted() == [])

        var refused = Machine(pingInterval: .seconds(10))
        _ = refused.channelInactive()
        #expect(refused.refused() == [])
        #expect(refused.admitted() == [])
        #expect(refused.endpoint == .gone)
    }

    @Test func aRefusalWithReadingPausedResumesItSoThePeersCloseIsRead() {
        var machine = Machine(pingInterval: .seconds(10))
        for id in 1...Machine.pendingLimit { _ = machine.messageReceived(message(id)) }
        #expect(machine.refused() == [.resumeReading])
        #expect(machine.messageReceived(message(99)) == [])
        #expect(machine.closeRequested(.unauthorized, reason: "unauthorized", timeout: .seconds(5), now: at(0)) == [
            .sendClose(.unauthorized, reason: "unauthorized", discardQueued: false), .schedule(.closeDeadline, at: at(5000)),
        ])
    }

    @Test func anAdmissionAfterTheEndpointAlreadyClosedDeliversNothingButResumesReading() {
        var machine = Machine(pingInterval: .seconds(10))
        for id in 1...Machine.pendingLimit { _ = machine.messageReceived(message(id)) }
        _ = machine.closeRequested(.goingAway, reason: nil, timeout: .seconds(5), now: at(0))
        #expect(machine.admitted() == [.resumeReading])
        #expect(machine.phase == .closing)
        #expect(machine.peerClosed(closePayload(1000), now: at(1)) == [.depart])
    }

    @Test func theFinOrAnErrorClosesAndDepartsOnceAndAClosedChannelDoesNothingMore() {
        var machine = openMachine()
        #expect(machine.inputClosed() == [.depart, .closeChannel])
        #expect(machine.errorCaught() == [.countError("socket_error"), .closeChannel])
        #expect(machine.channelInactive() == [])
        #expect(machine.phase == .closed)
        #expect(machine.pingReceived(ByteBuffer(string: "x")) == [])
        #expect(machine.peerClosed(closePayload(1000), now: at(0)) == [])
        #expect(machine.closeRequested(.normal, reason: nil, timeout: .seconds(1), now: at(0)) == [])
        #expect(machine.timerFired(.ping, now: at(10_000), pingPayload: 1) == [])
        #expect(machine.timerFired(.stopGrace, now: at(10_000), pingPayload: 1) == [])
    }

    /// Random events (messages, verdicts, pings, pongs, closes either way, admission, violations,
    /// the FIN, timers, the close frame's write), each action executed as `WebSocketSession`
    /// does, checked against `ContractModel`: what must have been delivered, departures, close
    /// frames, pauses and the socket's close.
    @Test func randomEventsKeepTheContract() {
        // How often each kind of ending and each rule came up over all seeds: the run must
        // have reached them for its checks to mean anything.
        var delivered = 0, overLimit = 0, peerFirst = 0, ourFirst = 0, crossed = 0, pingTimeouts = 0, departures = 0, undecided = 0
        for seed in UInt64(1)...UInt64(300) {
            var random = SplitMix64(seed: seed)
            var run = ContractRun(pingInterval: .seconds(10))
            for step in 0..<400 where !run.model.channelClosed {
                run.step(&random, label: "seed \(seed) step \(step)")
                if run.failed { return }
            }
            if run.model.admission == .undecided { undecided += 1 }
            run.finish(label: "seed \(seed)")
            if run.failed { return }
            delivered += run.model.delivered.count
            overLimit += run.stats.overLimit
            pingTimeouts += run.stats.pingTimeouts
            departures += run.model.departures
            if run.model.peerClosedFirst { peerFirst += 1 } else if run.model.ourClose != nil { ourFirst += 1 }
            if run.stats.crossed { crossed += 1 }
        }
        #expect(delivered > 500 && overLimit > 20 && pingTimeouts > 5 && departures > 100 && undecided > 5,
                "delivered \(delivered), over limit \(overLimit), ping timeouts \(pingTimeouts), departures \(departures), undecided \(undecided)")
        #expect(peerFirst > 30 && ourFirst > 30 && crossed > 5, "peer first \(peerFirst), ours first \(ourFirst), crossed \(crossed)")
    }
}

/// What the contract says must be observed, kept as plain facts about the run so far.
private struct ContractModel {
    enum Admission { case undecided, admitted, refused }
    var admission = Admission.undecided
    /// Messages received and not yet delivered or discarded, oldest first.
    var owed: [Machine.Message] = []
    var delivered: [Machine.Message] = []
    var departures = 0
    /// The connection went (or its endpoint stopped) before a decision: an admission departs at once.
    var goneBeforeAdmission = false
    var departed: Bool { departures > 0 }
    var ourClose: (code: CloseCode, discardQueued: Bool)?
    var peerClosed = false
    var peerClosedFirst = false
    var ourFrameWritten = false
    var closeFrameInFlight = false
    var channelClosed = false
    /// The read pause for the rate limit; the admission pause.
    var limitPause = false
    var admissionPause = false
    /// Pings sent since the peer last echoed one (two unanswered close the connection).
    var pings: [UInt64] = []
    var awaitingVerdict = false
    var stopped = false
    var anyCloseFrame: Bool { ourClose != nil || peerClosed }

    /// The connection went before the admission's result: what waits is never delivered.
    mutating func goneIfUndecided() {
        guard admission == .undecided else { return }
        goneBeforeAdmission = true
        owed = []
    }
}

private struct ContractRun {
    var machine: Machine
    var model = ContractModel()
    var now: Int64 = 0
    var armed: [Machine.Timer: NIODeadline] = [:]
    var nextID = 0
    var nextPing: UInt64 = 1000
    /// What came up, for the coverage check.
    var stats = (overLimit: 0, pingTimeouts: 0, crossed: false)
    private let failure = Failure()
    var label = ""
    var failed: Bool { failure.failed }

    /// Set by the first failed check, which stops the run (the rest would only echo it).
    private final class Failure {
        var failed = false
    }

    init(pingInterval: TimeAmount) {
        machine = Machine(pingInterval: pingInterval)
        apply(machine.start(now: at(0)), after: "start")
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        guard !condition, !failure.failed else { return }
        failure.failed = true
        Issue.record("\(label): \(message())")
    }

    mutating func step(_ random: inout SplitMix64, label: String) {
        self.label = label
        let roll = random.next(below: 1000)
        switch roll {
        case 0..<450, 800..<940:
            nextID += 1
            let message = Machine.Message(isText: random.next(below: 2) == 0, data: ByteBuffer(string: "\(nextID)"))
            // The contract: a message is owed to the endpoint unless a close frame went either
            // way, the endpoint is gone, or the sender is over its rate limit.
            let discarded = model.anyCloseFrame || model.departed || model.goneBeforeAdmission || model.admission == .refused
                || model.stopped
            let dropped = !discarded && model.admission == .admitted && model.limitPause
            if !discarded, !dropped { model.owed.append(message) }
            let actions = machine.messageReceived(message)
            if dropped { check(actions == [.countDroppedWhileOverLimit], "a message while over the limit: \(actions)") }
            apply(actions, after: "message")
        case 450..<520:
            let payload = ByteBuffer(string: "p\(random.next(below: 100))")
            let actions = machine.pingReceived(payload)
            check(actions == (model.anyCloseFrame ? [] : [.writePong(payload)]), "ping answered with \(actions)")
            apply(actions, after: "ping")
        case 520..<600:
            let right = random.next(below: 4) != 0
            let value = right ? (model.pings.randomElement(using: &random) ?? 7) : UInt64(random.next(below: 5))
            if model.pings.contains(value), !model.anyCloseFrame { model.pings = [] }
            apply(machine.pongReceived(pong(value)), after: "pong")
        case 600..<612:
            let payloads: [ByteBuffer] = [closePayload(1000), closePayload(nil), closePayload(999), ByteBuffer(bytes: [1]), closePayload(1000, [0xC0])]
            let payload = payloads[random.next(below: payloads.count)]
            let wasFirst = !model.anyCloseFrame
            let wasOpen = model.admission == .admitted && !model.departed
            let actions = machine.peerClosed(payload, now: at(now))
            model.goneIfUndecided()
            if wasOpen { check(actions.first == .depart, "the peer's close departs first: \(actions)") }
            if wasFirst {
                model.peerClosedFirst = true
                check(actions.contains(.sendClose(Machine.answer(toClose: payload), reason: nil, discardQueued: true)), "answered: \(actions)")
            } else if !model.peerClosed, !model.ourFrameWritten {
                stats.crossed = true  // the peer's close before our frame is written
            } else if !model.peerClosed, model.ourFrameWritten {
                check(actions.last == .closeChannel, "both frames crossed: \(actions)")
            }
            model.peerClosed = true
            model.owed = []
            apply(actions, after: "peer close")
        case 612..<620:
            let code = [CloseCode.normal, .goingAway, .eventEnded][random.next(below: 3)]
            let first = !model.anyCloseFrame
            let actions = machine.closeRequested(code, reason: nil, timeout: .seconds(5), now: at(now))
            check(actions == (first ? [.sendClose(code, reason: nil, discardQueued: false), .schedule(.closeDeadline, at: at(now + 5000))] : []),
                  "close requested: \(actions)")
            model.owed = []
            apply(actions, after: "close requested")
        case 620..<700 where model.admission == .undecided:
            if random.next(below: 4) == 0 {
                model.admission = .refused
                model.owed = []
                apply(machine.refused(), after: "refused")
            } else {
                model.admission = .admitted
                let actions = machine.admitted()
                if model.goneBeforeAdmission { check(actions.contains(.depart), "a connection gone meanwhile departs: \(actions)") }
                apply(actions, after: "admitted")
            }
        case 700..<705:
            let violation = WebSocketViolation(code: .protocolError, reason: "bad")
            model.goneIfUndecided()
            model.owed = []
            apply(machine.violation(violation, now: at(now)), after: "violation")
        case 705..<708:
            model.goneIfUndecided()
            apply(machine.inputClosed(), after: "FIN")
        case 708..<800 where model.closeFrameInFlight:
            model.closeFrameInFlight = false
            model.ourFrameWritten = true
            let actions = machine.closeFrameWritten()
            check(actions == (model.peerClosed ? [.closeChannel] : []), "close frame written: \(actions)")
            apply(actions, after: "close frame written")
        case 940..<1000:
            // Time passes to the earliest armed timer.
            guard let (timer, deadline) = armed.min(by: { $0.value < $1.value }) else { return }
            armed[timer] = nil
            now = max(now, Int64(deadline.uptimeNanoseconds / 1_000_000))
            let payload = nextPing
            nextPing += 1
            let unanswered = model.pings.count
            let actions = machine.timerFired(timer, now: at(now), pingPayload: payload)
            if timer == .ping, !model.anyCloseFrame {
                if unanswered >= 2 {
                    check(actions.first == .countError("ping_timeout"), "two unanswered pings close: \(actions)")
                    stats.pingTimeouts += 1
                    model.goneIfUndecided()
                } else {
                    check(actions == [.sendPing(payload), .schedule(.ping, at: at(now) + machine.pingInterval)], "ping: \(actions)")
                    model.pings.append(payload)
                }
            }
            if timer == .closeDeadline, model.anyCloseFrame { check(actions == [.closeChannel], "close deadline: \(actions)") }
            if timer == .resumeReading, model.limitPause { check(actions == [.resumeReading], "resume: \(actions)") }
            apply(actions, after: "timer \(timer)")
        default:
            break  // a choice that does not apply now (the admission is decided, no close frame in flight)
        }
    }

    /// Executes the actions as `WebSocketSession` does, checking each against the model.
    mutating func apply(_ actions: [Machine.Action], after event: String) {
        var queue = actions[...]
        let delivers = actions.filter { if case .deliver = $0 { true } else { false } }.count
        check(delivers <= 1 && (delivers == 0 || { if case .deliver = actions.last { true } else { false } }()),
              "\(event): a deliver is alone and last: \(actions)")
        while let action = queue.popFirst() {
            check(!model.channelClosed || action == .depart, "\(event): \(action) after the channel closed")
            switch action {
            case .deliver(let message):
                check(model.admission == .admitted && !model.departed && !model.anyCloseFrame && !model.limitPause && !model.awaitingVerdict,
                      "\(event): delivered \(message) out of turn")
                check(model.owed.first == message, "\(event): delivered \(message), owed \(model.owed.first.map { "\($0)" } ?? "nothing")")
                if !model.owed.isEmpty { model.owed.removeFirst() }
                model.delivered.append(message)
                // The endpoint's verdict, mostly "keep reading".
                let roll = Int(truncatingIfNeeded: message.data.readableBytes &* 7919 &+ model.delivered.count &* 31) % 100
                let verdict: InboundVerdict = roll < 80 ? .keepReading : roll < 92 ? .overLimit : roll < 96 ? .stop : .close(.messageTooBig, reason: "big")
                model.awaitingVerdict = true
                let next = machine.messageHandled(verdict, now: at(now))
                model.awaitingVerdict = false
                switch verdict {
                case .keepReading:
                    break
                case .overLimit:
                    stats.overLimit += 1
                    // Everything read with it is dropped unparsed.
                    let dropped = next.filter { $0 == .countDroppedWhileOverLimit }.count
                    if !model.limitPause {
                        check(dropped == model.owed.count, "\(event): over the limit drops \(dropped) of \(model.owed.count)")
                        model.owed = []
                    }
                case .stop, .close:
                    check(next.first == .depart, "\(event): a stop or close verdict departs first: \(next)")
                    model.stopped = true
                    model.owed = []
                }
                queue.append(contentsOf: next)
            case .depart:
                check(model.admission == .admitted && !model.departed, "\(event): depart without an admission, or twice")
                model.departures += 1
                model.owed = []
            case .writePong:
                check(!model.anyCloseFrame, "\(event): pong after a close frame")
            case .sendPing:
                break
            case .sendClose(let code, _, let discardQueued):
                check(model.ourClose == nil, "\(event): a second close frame")
                check(discardQueued == model.peerClosedFirst, "\(event): discardQueued \(discardQueued)")
                model.ourClose = (code, discardQueued)
                model.closeFrameInFlight = true
                model.owed = []
            case .closeChannel:
                model.channelClosed = true
                // The channel reports it: any departure comes now.
                let wasOpen = model.admission == .admitted && !model.departed
                let next = machine.channelInactive()
                check(next == (wasOpen ? [.depart] : []), "\(event): channel inactive: \(next)")
                model.goneIfUndecided()
                queue.append(contentsOf: next)
            case .pauseReading:
                check(model.admission == .undecided ? !model.admissionPause : !model.limitPause, "\(event): paused twice")
                if model.admission == .undecided { model.admissionPause = true } else { model.limitPause = true }
            case .resumeReading:
                if model.admissionPause {
                    model.admissionPause = false
                } else {
                    check(model.limitPause, "\(event): resumed without a pause")
                    model.limitPause = false
                }
            case .schedule(let timer, let deadline):
                check(deadline >= at(now), "\(event): \(timer) scheduled in the past")
                armed[timer] = deadline
            case .countError, .countDroppedWhileOverLimit:
                break
            }
        }
        check(machine.delivering == false, "\(event): a verdict is still awaited")
    }

    mutating func finish(label: String) {
        self.label = label
        // Whatever is still open ends: the channel goes, and an admitted endpoint hears it once.
        if !model.channelClosed {
            model.channelClosed = true
            let wasOpen = model.admission == .admitted && !model.departed
            let actions = machine.channelInactive()
            check(actions == (wasOpen ? [.depart] : []), "inactive at the end: \(actions)")
            if wasOpen { model.departures += 1 }
        }
        if model.admission == .undecided {
            model.admission = .admitted
            check(machine.admitted().last == .depart, "admitted after the end departs at once")
            model.departures += 1
        }
        check(model.admission != .admitted || model.departures == 1, "departures \(model.departures)")
        check(machine.phase == .closed, "phase \(machine.phase)")
    }
}
