import Foundation

/// Finds the folder of the browser client that `serve` publishes at `/`.
///
/// `--web-dir` (flag, `AIRWAVE_WEB_DIR`, config key `web-dir`) names it; `none` turns the client
/// off. Without the setting the first of these that holds an `index.html` is used: `Web/` next to
/// the executable, `../share/airwave/Web` beside its folder, and the `Web/` folder of the source
/// tree the binary was built from. Nothing here can crash when the binary has been moved: a
/// folder that is not there is simply skipped.
enum WebDirectory {
    /// The folder to serve, or nil when there is none (then `/` answers 404 with a hint).
    static func resolve(_ configured: String?) throws(ConfigurationError) -> String? {
        if let configured {
            if configured == "none" { return nil }
            guard holdsClient(configured) else {
                throw ConfigurationError("--web-dir \(configured) is not a folder with an index.html (use --web-dir none to serve no web client).")
            }
            return URL(fileURLWithPath: configured).standardizedFileURL.path
        }
        return candidates().first(where: holdsClient)
    }

    private static func candidates() -> [String] {
        var folders: [String] = []
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            let binDir = executable.deletingLastPathComponent()
            folders.append(binDir.appendingPathComponent("Web").path)
            folders.append(binDir.deletingLastPathComponent().appendingPathComponent("share/airwave/Web").path)
        }
        // Sources/airwave/WebDirectory.swift → the package root.
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        folders.append(sourceRoot.appendingPathComponent("Web").path)
        return folders
    }

    private static func holdsClient(_ folder: String) -> Bool {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else { return false }
        return FileManager.default.isReadableFile(atPath: URL(fileURLWithPath: folder).appendingPathComponent("index.html").path)
    }
}
