import AirwaveCore
import AirwaveStore

/// Persistence: the engine's records go to the store writer in order, batched per pass; an
/// `awaitPersistence` waits until everything so far is stored before the next output.
extension LiveEventDriver {
    /// Hands the pass's records to the writer (it batches them with other events').
    func enqueueRecords(_ state: inout RunState, _ services: Services) {
        guard !state.records.isEmpty else { return }
        services.writer.enqueue(state.records)
        state.records.removeAll(keepingCapacity: true)
    }

    /// Waits until every record so far is durably stored, or for ``flushPatience`` while the
    /// store is unreachable: then the event goes on (media, joins) and the records are written
    /// when the store is back, so a store outage delays chat by a moment and stops nothing.
    func flushRecords(_ state: inout RunState, _ services: Services) async {
        enqueueRecords(&state, services)
        await services.writer.flush(within: Self.flushPatience)
    }

    /// How long an event waits for the store before it relays what waits to be stored.
    static var flushPatience: Duration { .seconds(1) }
}
