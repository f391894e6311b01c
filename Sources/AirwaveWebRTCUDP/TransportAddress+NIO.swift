import AirwaveWebRTC
import NIOCore

extension TransportAddress {
    /// The IP and port of a NIO address; nil for Unix-domain addresses.
    init?(_ address: NIOCore.SocketAddress) {
        guard let port = address.port, let portNumber = UInt16(exactly: port) else { return nil }
        switch address {
        case let .v4(ipv4):
            let bytes = withUnsafeBytes(of: ipv4.address.sin_addr) { Array($0) }
            self.init(ip: .v4(bytes[0], bytes[1], bytes[2], bytes[3]), port: portNumber)
        case let .v6(ipv6):
            self.init(ip: .v6(withUnsafeBytes(of: ipv6.address.sin6_addr) { Array($0) }), port: portNumber)
        default:
            return nil
        }
    }
}
