import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Logging
import NIOCore

/// The origin's end of an edge's link (PROTOCOL.md 8): `/ws/cluster/link/{eventId}/` with
/// `?node=` (the edge's node id), `?session=` (the edge's instance of the event) and `?token=`
/// (a `ClusterLinkToken` made with the cluster secret). A link without a valid token is
/// refused `unauthorized`; one for an event that is not live here gets the error a listener
/// would (`event_ended`, `event_not_found`, or `server_busy` naming its origin).
struct ClusterLinkRoutes: Sendable {
    let server: AirwaveServer

    func link(_ request: WebSocketRequest, eventID rawEventID: Substring, connection: ClientConnection) async -> Admission {
        let checks = SocketChecks(server: server)
        let driver: LiveEventDriver
        let nodeID: String
        do {
            try checks.ensureServing()
            guard let cluster = server.cluster else {
                throw ProtocolError(.forbidden, "This server is not a node of a cluster.")
            }
            let eventID = try checks.pathID(rawEventID, name: "eventId")
            guard let node = request.query["node"], Identifier.isValid(node), let session = request.query["session"], Identifier.isValid(session),
                  let token = request.query["token"],
                  ClusterLinkToken.isValid(token, nodeID: node, eventID: eventID, secret: cluster.settings.secret)
            else {
                server.metrics.authFailure(reason: "cluster_link")
                throw ProtocolError(.unauthorized, "A link between nodes needs the cluster's credential.", details: ["reason": "cluster_link"])
            }
            guard let found = await server.registry.driver(for: eventID) else {
                throw try await server.eventGone(eventID)
            }
            guard found.linkOpened(node, session: session, connection: connection) else {
                throw ProtocolError(.eventEnded, "This event has ended.")
            }
            (driver, nodeID) = (found, node)
        } catch {
            return checks.refusal(error)
        }
        let logger = server.logger
        let lags = server.linkLags
        lags.watch(connection, eventID: driver.eventID, edge: nodeID)
        return .admitted(
            receiver: { EdgeLinkReceiver(link: nodeID, connection: connection.id, driver: driver, logger: logger) },
            departure: {
                lags.unwatch(connection.id, eventID: driver.eventID, edge: nodeID)
                driver.linkClosed(nodeID, connection: connection.id)
            })
    }
}

/// Reads what an edge sends up its link and hands it to the event's driver, in order. The
/// edge checked its clients' messages already (sizes, rates, Opus), so nothing is limited
/// here but the link's own framing: a frame that is no link message closes the link.
final class EdgeLinkReceiver: InboundReceiver {
    private let link: String
    private let connection: ConnectionID
    private let driver: LiveEventDriver
    private let logger: Logger

    init(link: String, connection: ConnectionID, driver: LiveEventDriver, logger: Logger) {
        self.link = link
        self.connection = connection
        self.driver = driver
        self.logger = logger
    }

    func text(_ text: String, now: Timestamp) -> InboundVerdict {
        receive(.text(text))
    }

    func binary(_ buffer: ByteBuffer, now: Timestamp) -> InboundVerdict {
        guard let frame = try? MediaFrame(parsing: buffer) else {
            return refuse(EdgeLinkMessage.DecodingError("a binary frame that is no media frame"))
        }
        return receive(.binary(frame))
    }

    private func receive(_ frame: EdgeLinkMessage.Frame) -> InboundVerdict {
        let message: EdgeLinkMessage.Up
        do {
            message = try EdgeLinkMessage.Up(frame)
        } catch {
            return refuse(error)
        }
        return driver.linkMessage(link, connection: connection, message) ? .keepReading : .stop
    }

    private func refuse(_ error: EdgeLinkMessage.DecodingError) -> InboundVerdict {
        logger.warning("closing an edge's link", metadata: ["node_id": "\(link)", "error": "\(error)"])
        return .close(.protocolError, reason: "bad link message")
    }
}
