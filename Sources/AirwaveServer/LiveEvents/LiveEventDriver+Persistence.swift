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

    /// Waits until every record so far is durably stored.
    func flushRecords(_ state: inout RunState, _ services: Services) async {
        enqueueRecords(&state, services)
        await services.writer.flush()
    }
}
