import AsyncHTTPClient
import Foundation
import Logging

/// Resolves a user's display name through an HTTP user-lookup service, with a bounded TTL cache.
///
/// The URL template contains `{user_id}`, replaced by the percent-encoded user id. The JSON answer's
/// `username`, `preferred_username`, `name` or nested `user.username` (first usable one) is the name.
/// Answers with a name (hits) and `404` or name-less answers (misses) are cached for ``ttl``;
/// failures (timeouts, other statuses, bad JSON) are logged, not cached, and resolve to `nil` so the
/// caller falls back to the user id. Concurrent lookups of one id share a single request.
actor UserLookup {
    /// What one lookup produced.
    enum Outcome: Sendable, Equatable {
        case found(String)
        case notFound
        case failed
    }

    private struct Entry {
        var username: String?
        var storedAt: Date
        var sequence: UInt64
    }

    /// Placeholder replaced by the user id in the URL template.
    static let placeholder = "{user_id}"
    /// Largest lookup answer accepted, in bytes.
    static let maximumBodyBytes = 64 * 1024

    let template: String
    let timeout: Duration
    let ttl: TimeInterval
    let capacity: Int
    private let client: HTTPClient
    private let logger: Logger

    private var cache: [String: Entry] = [:]
    /// Insertion order for eviction; entries whose sequence no longer matches are stale.
    private var order: [(userID: String, sequence: UInt64)] = []
    private var orderHead = 0
    private var nextSequence: UInt64 = 0
    private var inFlight: [String: Task<Outcome, Never>] = [:]

    /// Number of entries currently cached (hits and misses).
    var cachedCount: Int { cache.count }

    /// Creates a lookup; `template` must already be validated with ``validate(template:)``.
    init(
        template: String, client: HTTPClient, timeout: Duration, ttl: Duration = .seconds(300),
        capacity: Int = 10_000, logger: Logger
    ) {
        self.template = template
        self.client = client
        self.timeout = timeout
        self.ttl = ttl.secondsDouble
        self.capacity = max(1, capacity)
        self.logger = logger
    }

    /// Checks that `template` is an http(s) URL containing `{user_id}`.
    static func validate(template: String) throws(AuthConfigurationError) {
        guard template.contains(placeholder) else {
            throw AuthConfigurationError("The user lookup URL \(template) must contain \(placeholder).")
        }
        let sample = url(template: template, userID: "user")
        guard let parsed = URL(string: sample), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https", parsed.host != nil
        else {
            throw AuthConfigurationError("The user lookup URL \(template) is not a valid http(s) URL.")
        }
    }

    /// The template with `{user_id}` replaced by the percent-encoded id (only unreserved characters
    /// `A-Z a-z 0-9 - . _ ~` stay as they are).
    static func url(template: String, userID: String) -> String {
        var unreserved = CharacterSet()
        unreserved.insert(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let encoded = userID.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
        return template.replacingOccurrences(of: placeholder, with: encoded)
    }

    /// The display name for `userID`, or `nil` when the service has none or could not be asked.
    /// `now` dates cache entries (the caller's clock, so tests can move time).
    func username(for userID: String, now: Date = Date()) async -> String? {
        switch await outcome(for: userID, now: now) {
        case .found(let name): name
        case .notFound, .failed: nil
        }
    }

    /// The lookup outcome for `userID`, from the cache when fresh.
    func outcome(for userID: String, now: Date = Date()) async -> Outcome {
        if let entry = cache[userID] {
            let age = now.timeIntervalSince(entry.storedAt)
            if age >= 0, age < ttl {
                return entry.username.map(Outcome.found) ?? .notFound
            }
            cache[userID] = nil
        }
        if let running = inFlight[userID] {
            return await running.value
        }
        let task = Task { [template, client, timeout, logger] in
            await Self.fetch(userID: userID, template: template, client: client, timeout: timeout, logger: logger)
        }
        inFlight[userID] = task
        let result = await task.value
        inFlight[userID] = nil
        switch result {
        case .found(let name): store(userID: userID, username: name, now: now)
        case .notFound: store(userID: userID, username: nil, now: now)
        case .failed: break
        }
        return result
    }

    private func store(userID: String, username: String?, now: Date) {
        if cache[userID] == nil {
            evictIfFull(now: now)
        }
        nextSequence += 1
        cache[userID] = Entry(username: username, storedAt: now, sequence: nextSequence)
        order.append((userID, nextSequence))
        compactOrderIfNeeded()
    }

    /// Makes room for one new entry, dropping the oldest entries first.
    private func evictIfFull(now: Date) {
        while cache.count >= capacity, orderHead < order.count {
            let oldest = order[orderHead]
            orderHead += 1
            if cache[oldest.userID]?.sequence == oldest.sequence {
                cache[oldest.userID] = nil
            }
        }
    }

    private func compactOrderIfNeeded() {
        // Drop consumed and stale positions once they dominate the queue.
        guard order.count > 2 * capacity + 64 || (orderHead > 1024 && orderHead * 2 > order.count) else { return }
        order = order[orderHead...].filter { cache[$0.userID]?.sequence == $0.sequence }
        orderHead = 0
    }

    /// Performs one HTTP lookup.
    static func fetch(
        userID: String, template: String, client: HTTPClient, timeout: Duration, logger: Logger
    ) async -> Outcome {
        let url = url(template: template, userID: userID)
        do {
            let response = try await HTTPGet.fetch(
                url, client: client, timeout: timeout, maximumBytes: maximumBodyBytes, logger: logger)
            switch response.status {
            case 200:
                guard let object = JSONValue.object(from: response.body) else {
                    logger.warning(
                        "User lookup answered something other than a JSON object; using the user id",
                        metadata: ["user_id": "\(userID)"])
                    return .failed
                }
                return name(in: object).map(Outcome.found) ?? .notFound
            case 404:
                return .notFound
            default:
                logger.warning(
                    "User lookup failed; using the user id",
                    metadata: ["user_id": "\(userID)", "status": "\(response.status)"])
                return .failed
            }
        } catch {
            logger.warning(
                "User lookup failed; using the user id",
                metadata: ["user_id": "\(userID)", "error": "\(error)"])
            return .failed
        }
    }

    /// The display name in a lookup answer.
    static func name(in object: [String: JSONValue]) -> String? {
        if let name = Identity.firstDisplayName(in: object, keys: ["username", "preferred_username", "name"]) {
            return name
        }
        if case .object(let user)? = object["user"] {
            return Identity.displayName(user["username"])
        }
        return nil
    }
}
