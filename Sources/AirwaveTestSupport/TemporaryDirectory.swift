import Foundation

/// A new, empty folder under the system's temporary directory, for one test. Nothing removes it
/// implicitly: call `remove()`, usually in a `defer`.
public struct TemporaryDirectory: Sendable {
    public let url: URL

    /// Creates `<tmp>/<prefix>-<UUID>`; the prefix says which suite left a folder behind.
    public init(prefix: String = "airwave-test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The folder's path.
    public var path: String { url.path }

    /// The path of `name` inside the folder (not created).
    public func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    /// Writes `text` to `name` inside the folder and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: file)
        return file.path
    }

    /// Removes the folder and everything in it (best effort).
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
