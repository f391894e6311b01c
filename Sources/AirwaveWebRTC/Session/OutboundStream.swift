/// One stream the server sends to a listener (the mix, or the screen): header rewriting, the
/// NACK history and the sender-report statistics, all keyed to one output SSRC. A class, so that
/// sending a packet updates it in place: as a struct it was moved out of the session and back
/// for every packet and listener (retains and releases of all its parts).
final class OutboundStream {
    let payloadType: UInt8
    var rewriter: RTPStreamRewriter
    var history: RTPRetransmissionHistory
    var statistics: RTPSenderStatistics

    /// `historyCapacity` covers the history's 1 s at the stream's packet rate.
    init(ssrc: UInt32, payloadType: UInt8, clockRate: UInt32, historyCapacity: Int) {
        let random = Crypto.randomBytes(6)
        self.payloadType = payloadType
        rewriter = RTPStreamRewriter(
            outputSSRC: ssrc, clockRate: clockRate,
            initialSequence: UInt16(random[0]) << 8 | UInt16(random[1]),
            initialTimestamp: random[2...].reduce(0) { $0 << 8 | UInt32($1) })
        history = RTPRetransmissionHistory(capacity: historyCapacity)
        statistics = RTPSenderStatistics(ssrc: ssrc, clockRate: clockRate)
    }
}
