import AirwaveCore

/// The end of an event's driver: the server going away is an input of the engine (which sends
/// `server_shutdown`, closes with 1001 and records the end); once the engine reports `ended`,
/// the driver stops its clocks, leaves the directory and tells the registry.
extension LiveEventDriver {
    /// Ends the event because the server is going away (through the engine, in order with
    /// every input queued before).
    func shutdown() {
        inbox.yield(.shutdown)
    }

    /// Leaves the event to another node because this one is going away (a node of a cluster).
    func handOver() {
        inbox.yield(.handOver)
    }

    /// Runs once after the engine's `ended`.
    func reportEnd(_ state: inout RunState, _ services: Services) async {
        guard !state.reportedEnd else { return }
        state.reportedEnd = true
        state.timer.cancel()
        state.mixClock.timer?.cancel()
        state.mix.stopRecording()
        await services.directory.remove(eventID, handedOver: state.handedOver)
        services.metrics.eventParticipants(eventID, count: nil)
        await services.onEnded(eventID)
        inbox.finish()
    }
}
