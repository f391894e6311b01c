/// The outputs of a sans-IO engine, handed out in the order they were made. Polling may
/// interleave with new outputs (a driver can feed an input back while draining).
public struct OutputQueue<Output: Sendable>: Sendable {
    private var items: [Output] = []
    private var next = 0

    public init() {}

    /// Adds an output at the end.
    public mutating func append(_ output: Output) {
        items.append(output)
    }

    /// The oldest output not handed out yet, or nil; storage is reused once all are out.
    public mutating func poll() -> Output? {
        guard next < items.count else {
            if !items.isEmpty {
                items.removeAll(keepingCapacity: true)
                next = 0
            }
            return nil
        }
        defer { next += 1 }
        return items[next]
    }
}
