import SQLKit

extension SQLEventStore.Table {
    /// One heartbeat row per node of a cluster.
    static let nodes = "cluster_nodes"
    /// One row per live event of a cluster: its origin node and directory entry.
    static let origins = "event_origins"
}

extension SQLEventStore: ClusterStore {
    typealias ClusterTable = SQLEventStore.Table

    /// Version 6: the cluster's heartbeat rows and event origins (PROTOCOL.md 8). Created on
    /// SQLite too, where a single node never fills them: one schema for both engines.
    @Sendable
    static func createClusterSchema(on db: any SQLDatabase) async throws {
        try await db.create(table: ClusterTable.nodes)
            .column("node_id", type: .text, .primaryKey(autoIncrement: false), .notNull)
            .column("url", type: .text, .notNull)
            .column("started_at", type: .bigint, .notNull)
            .column("last_seen", type: .bigint, .notNull)
            .column("events", type: .bigint, .notNull)
            .column("connections", type: .bigint, .notNull)
            .run()
        try await db.create(table: ClusterTable.origins)
            .column("event_id", type: .text, .primaryKey(autoIncrement: false), .notNull)
            .column("node_id", type: .text, .notNull)
            .column("host_user_id", type: .text, .notNull)
            .column("host_username", type: .text, .notNull)
            .column("mode", type: .text, .notNull)
            .column("participant_count", type: .bigint, .notNull)
            .column("started_at", type: .bigint, .notNull)
            .column("ended_at", type: .bigint)
            .run()
        try await db.create(index: "event_origins_node_id_idx")
            .on(ClusterTable.origins)
            .column("node_id")
            .run()
    }

    public func heartbeat(_ node: NodeRecord) async throws {
        try await transaction { db in
            try await db.insert(into: ClusterTable.nodes)
                .columns(Self.nodeColumns)
                .values(node.nodeID, node.url, node.startedAt, node.lastSeen, Int64(node.events), Int64(node.connections))
                .onConflict(with: "node_id") {
                    $0.set(excludedValueOf: "url")
                        .set(excludedValueOf: "started_at")
                        .set(excludedValueOf: "last_seen")
                        .set(excludedValueOf: "events")
                        .set(excludedValueOf: "connections")
                }
                .run()
            // Nodes gone for a day leave the table: node ids are chosen by operators (and made anew
            // with a new data folder), so rows would pile up. Origin rows stay, one per event like
            // the events table, saying where each event ran (its recordings are there).
            let cutoff = node.lastSeen - Self.goneNodeRetention
            try await db.delete(from: ClusterTable.nodes).where("last_seen", .lessThan, cutoff).run()
        }
    }

    /// How long the row of a node that stopped beating is kept (a day, in milliseconds).
    static let goneNodeRetention: EpochMillis = 86_400_000

    public func liveNodes(seenSince: EpochMillis) async throws -> [NodeRecord] {
        try await read { db in
            try await db.select()
                .columns(Self.nodeColumns)
                .from(ClusterTable.nodes)
                .where("last_seen", .greaterThanOrEqual, seenSince)
                .orderBy("node_id")
                .all()
                .map(Self.nodeRecord)
        }
    }

    public func removeNode(_ nodeID: String, at: EpochMillis) async throws {
        try await transaction { db in
            // Events still live were handed over (their host may resume them elsewhere): their
            // rows stay open, on a node that is gone, saying since when.
            let live = SQLSubquery.select { $0.column("event_id").from(Table.events).where("ended_at", .is, SQLLiteral.null) }
            try await db.update(ClusterTable.origins)
                .set("ended_at", to: at)
                .where("node_id", .equal, nodeID)
                .where("ended_at", .is, SQLLiteral.null)
                .where("event_id", .notIn, live)
                .run()
            try await db.update(ClusterTable.origins)
                .set("handed_over_at", to: at)
                .where("node_id", .equal, nodeID)
                .where("ended_at", .is, SQLLiteral.null)
                .where("event_id", .in, live)
                .run()
            try await db.delete(from: ClusterTable.nodes).where("node_id", .equal, nodeID).run()
        }
    }

    public func publishOrigins(_ origins: [OriginRecord], removed: [String], nodeID: String, at: EpochMillis) async throws {
        guard !origins.isEmpty || !removed.isEmpty else { return }
        try await transaction { db in
            for origin in origins {
                try await db.insert(into: ClusterTable.origins)
                    .columns(Self.originColumns)
                    .values(origin.eventID, origin.nodeID, origin.hostUserID, origin.hostUsername, origin.mode,
                            Int64(origin.participantCount), origin.startedAt)
                    .onConflict(with: "event_id") {
                        $0.set(excludedValueOf: "node_id")
                            .set("ended_at", to: SQLLiteral.null)
                            .set("handed_over_at", to: SQLLiteral.null)
                            .set(excludedValueOf: "host_user_id")
                            .set(excludedValueOf: "host_username")
                            .set(excludedValueOf: "mode")
                            .set(excludedValueOf: "participant_count")
                            .set(excludedValueOf: "started_at")
                    }
                    .run()
            }
            // After the rows: an event that started and ended between two publications is
            // written and ended in one go.
            if !removed.isEmpty {
                try await db.update(ClusterTable.origins)
                    .set("ended_at", to: at)
                    .where("node_id", .equal, nodeID)
                    .where("event_id", .in, removed)
                    .where("ended_at", .is, SQLLiteral.null)
                    .run()
            }
        }
    }

    public func liveOrigins(seenSince: EpochMillis) async throws -> [OriginRecord] {
        try await read { db in
            try await db.select()
                .columns(Self.originColumns)
                .from(ClusterTable.origins)
                .where("ended_at", .is, SQLLiteral.null)
                .where("node_id", .in, Self.nodesSeen(since: seenSince))
                .orderBy("started_at")
                .orderBy("event_id")
                .all()
                .map(Self.originRecord)
        }
    }

    public func origin(of eventID: String, seenSince: EpochMillis) async throws -> NodeRecord? {
        try await read { db in
            guard let owner = try await db.select()
                .column("node_id")
                .from(ClusterTable.origins)
                .where("event_id", .equal, eventID)
                .where("ended_at", .is, SQLLiteral.null)
                .first(decodingColumn: "node_id", as: String.self)
            else { return nil }
            return try await db.select()
                .columns(Self.nodeColumns)
                .from(ClusterTable.nodes)
                .where("node_id", .equal, owner)
                .where("last_seen", .greaterThanOrEqual, seenSince)
                .first()
                .map(Self.nodeRecord)
        }
    }

    public func liveOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> OriginRecord? {
        try await read { db in
            try await db.select()
                .columns(Self.originColumns)
                .from(ClusterTable.origins)
                .where("host_user_id", .equal, hostUserID)
                .where("ended_at", .is, SQLLiteral.null)
                .where("node_id", .in, Self.nodesSeen(since: seenSince))
                .orderBy("started_at", .descending)
                .first()
                .map(Self.originRecord)
        }
    }

    public func interruptedOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> (origin: OriginRecord, departure: OriginDeparture)? {
        try await read { db in
            guard let origin = try await db.select()
                .columns(Self.originColumns)
                .from(ClusterTable.origins)
                .where("host_user_id", .equal, hostUserID)
                .where("ended_at", .is, SQLLiteral.null)
                .where("node_id", .notIn, Self.nodesSeen(since: seenSince))
                .where("event_id", .in, SQLSubquery.select { $0.column("event_id").from(Table.events).where("ended_at", .is, SQLLiteral.null) })
                .orderBy("started_at", .descending)
                .first()
                .map(Self.originRecord)
            else { return nil }
            return (origin, try await Self.departure(of: origin.eventID, on: db) ?? OriginDeparture(lastSeen: nil, handedOverAt: nil))
        }
    }

    public func originDeparture(of eventID: String) async throws -> OriginDeparture? {
        try await read { db in try await Self.departure(of: eventID, on: db) }
    }

    private static func departure(of eventID: String, on db: any SQLDatabase) async throws -> OriginDeparture? {
        guard let row = try await db.select()
            .column(SQLColumn("handed_over_at", table: ClusterTable.origins))
            .column(SQLColumn("ended_at", table: ClusterTable.origins))
            .column(SQLColumn("last_seen", table: ClusterTable.nodes))
            .from(ClusterTable.origins)
            .join(ClusterTable.nodes, method: SQLJoinMethod.left, on: SQLColumn("node_id", table: ClusterTable.origins), .equal,
                  SQLColumn("node_id", table: ClusterTable.nodes))
            .where(SQLColumn("event_id", table: ClusterTable.origins), .equal, SQLBind(eventID))
            .first()
        else { return nil }
        return OriginDeparture(lastSeen: try row.decode(column: "last_seen", as: EpochMillis?.self),
                               handedOverAt: try row.decode(column: "handed_over_at", as: EpochMillis?.self),
                               endedAt: try row.decode(column: "ended_at", as: EpochMillis?.self))
    }

    public func originNode(of eventID: String) async throws -> (nodeID: String, node: NodeRecord?)? {
        try await read { db in
            guard let owner = try await db.select()
                .column("node_id")
                .from(ClusterTable.origins)
                .where("event_id", .equal, eventID)
                .first(decodingColumn: "node_id", as: String.self)
            else { return nil }
            let node = try await db.select()
                .columns(Self.nodeColumns)
                .from(ClusterTable.nodes)
                .where("node_id", .equal, owner)
                .first()
                .map(Self.nodeRecord)
            return (owner, node)
        }
    }

    public func endInterruptedEvents(reason: String, at: EpochMillis, sparing: Set<String>) async throws -> Int {
        try await transaction { db in
            func interrupted(_ query: SQLSelectBuilder) -> SQLSelectBuilder {
                var query = query.from(Table.events).where("ended_at", .is, SQLLiteral.null)
                if !sparing.isEmpty {
                    query = query.where(
                        "event_id", .notIn,
                        SQLSubquery.select { $0.column("event_id").from(ClusterTable.origins).where("node_id", .in, Array(sparing)) })
                }
                return query
            }
            let live = try await interrupted(db.select().column("event_id")).all(decodingColumn: "event_id", as: String.self)
            guard !live.isEmpty else { return 0 }
            try await db.update(Table.participants)
                .set("left_at", to: at)
                .where("left_at", .is, SQLLiteral.null)
                .where("event_id", .in, live)
                .run()
            try await db.update(Table.events)
                .set("ended_at", to: at)
                .set("end_reason", to: reason)
                .where("event_id", .in, live)
                .run()
            try await db.update(ClusterTable.origins)
                .set("ended_at", to: at)
                .where("event_id", .in, live)
                .where("ended_at", .is, SQLLiteral.null)
                .run()
            return live.count
        }
    }

    public func notify(channel: String, payload: String) async throws {
        guard database.dialect.name == "postgresql" else { return try await gate.checkOpen() }
        try await transaction { db in
            try await db.raw("SELECT pg_notify(\(bind: channel), \(bind: payload))").run()
        }
    }

    /// A node row's columns, in the order `nodeRecord` reads them and `heartbeat` writes them.
    static let nodeColumns = ["node_id", "url", "started_at", "last_seen", "events", "connections"]
    /// An origin row's columns as written and read (`ended_at` apart).
    static let originColumns = ["event_id", "node_id", "host_user_id", "host_username", "mode", "participant_count", "started_at"]

    /// The ids of nodes whose heartbeat is at `since` or later, as a subquery.
    private static func nodesSeen(since: EpochMillis) -> some SQLExpression {
        SQLSubquery.select { $0.column("node_id").from(ClusterTable.nodes).where("last_seen", .greaterThanOrEqual, since) }
    }

    private static func nodeRecord(_ row: any SQLRow) throws -> NodeRecord {
        NodeRecord(
            nodeID: try row.decode(column: "node_id", as: String.self),
            url: try row.decode(column: "url", as: String.self),
            startedAt: try row.decode(column: "started_at", as: EpochMillis.self),
            lastSeen: try row.decode(column: "last_seen", as: EpochMillis.self),
            events: Int(try row.decode(column: "events", as: Int64.self)),
            connections: Int(try row.decode(column: "connections", as: Int64.self)))
    }

    private static func originRecord(_ row: any SQLRow) throws -> OriginRecord {
        OriginRecord(
            eventID: try row.decode(column: "event_id", as: String.self),
            nodeID: try row.decode(column: "node_id", as: String.self),
            hostUserID: try row.decode(column: "host_user_id", as: String.self),
            hostUsername: try row.decode(column: "host_username", as: String.self),
            mode: try row.decode(column: "mode", as: String.self),
            participantCount: Int(try row.decode(column: "participant_count", as: Int64.self)),
            startedAt: try row.decode(column: "started_at", as: EpochMillis.self))
    }
}
