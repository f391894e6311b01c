/// An IP address and UDP port (an ICE "transport address"), as carried in STUN and SDP;
/// independent of any socket API.
public struct TransportAddress: Hashable, Sendable, CustomStringConvertible {
    public enum IP: Hashable, Sendable {
        /// Four bytes, network order.
        case v4(UInt8, UInt8, UInt8, UInt8)
        /// Sixteen bytes, network order.
        case v6([UInt8])
    }

    public var ip: IP
    public var port: UInt16

    public init(ip: IP, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses a dotted IPv4 or a colon-separated IPv6 address (with `::`).
    public init?(host: String, port: UInt16) {
        if let v4 = Self.parseIPv4(host) {
            self.init(ip: v4, port: port)
        } else if let v6 = Self.parseIPv6(host) {
            self.init(ip: .v6(v6), port: port)
        } else {
            return nil
        }
    }

    public var ipBytes: [UInt8] {
        switch ip {
        case let .v4(a, b, c, d): [a, b, c, d]
        case let .v6(bytes): bytes
        }
    }

    /// The address text: dotted IPv4, or IPv6 groups in hex (`::` compression applied to the
    /// longest run of zero groups).
    public var host: String {
        switch ip {
        case let .v4(a, b, c, d):
            return "\(a).\(b).\(c).\(d)"
        case let .v6(bytes):
            guard bytes.count == 16 else { return "::" }
            let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            var bestStart = -1, bestLength = 0, runStart = -1
            for (index, group) in groups.enumerated() {
                if group == 0 {
                    if runStart < 0 { runStart = index }
                    if index - runStart + 1 > bestLength { bestStart = runStart; bestLength = index - runStart + 1 }
                } else {
                    runStart = -1
                }
            }
            let text = groups.map { String($0, radix: 16) }
            if bestLength < 2 { return text.joined(separator: ":") }
            let head = text[0..<bestStart].joined(separator: ":")
            let tail = text[(bestStart + bestLength)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    public var description: String {
        switch ip {
        case .v4: "\(host):\(port)"
        case .v6: "[\(host)]:\(port)"
        }
    }

    private static func parseIPv4(_ text: String) -> IP? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let byte = UInt8(part) else { return nil }
            bytes.append(byte)
        }
        return .v4(bytes[0], bytes[1], bytes[2], bytes[3])
    }

    private static func parseIPv6(_ text: String) -> [UInt8]? {
        let characters = Array(text)
        var halves: [String] = []
        var start = 0, index = 0
        while index < characters.count {
            if index + 1 < characters.count, characters[index] == ":", characters[index + 1] == ":" {
                halves.append(String(characters[start..<index]))
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        halves.append(String(characters[start...]))
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// XOR-MAPPED-ADDRESS value bytes (RFC 8489 §14.2).
    func xorEncoded(transactionID: [UInt8]) -> [UInt8] {
        var value: [UInt8] = [0]
        let cookie = STUNMessage.magicCookie
        let mask = [UInt8(cookie >> 24), UInt8((cookie >> 16) & 0xFF), UInt8((cookie >> 8) & 0xFF), UInt8(cookie & 0xFF)]
            + transactionID
        switch ip {
        case .v4: value.append(0x01)
        case let .v6(bytes):
            guard bytes.count == 16 else { return [] }
            value.append(0x02)
        }
        value.appendUInt16(port ^ UInt16(cookie >> 16))
        for (index, byte) in ipBytes.enumerated() {
            value.append(byte ^ mask[index])
        }
        return value
    }

    /// Decodes an XOR-MAPPED-ADDRESS value; `nil` if malformed.
    static func xorDecoded(_ value: [UInt8], transactionID: [UInt8]) -> TransportAddress? {
        var reader = ByteReader(value)
        guard reader.readUInt8() != nil, let family = reader.readUInt8(), let xPort = reader.readUInt16() else { return nil }
        let cookie = STUNMessage.magicCookie
        let mask = [UInt8(cookie >> 24), UInt8((cookie >> 16) & 0xFF), UInt8((cookie >> 8) & 0xFF), UInt8(cookie & 0xFF)]
            + transactionID
        let port = xPort ^ UInt16(cookie >> 16)
        switch family {
        case 0x01:
            guard reader.remaining == 4, let raw = reader.readBytes(4) else { return nil }
            let b = raw.enumerated().map { $0.element ^ mask[$0.offset] }
            return TransportAddress(ip: .v4(b[0], b[1], b[2], b[3]), port: port)
        case 0x02:
            guard reader.remaining == 16, let raw = reader.readBytes(16), transactionID.count == 12 else { return nil }
            return TransportAddress(ip: .v6(raw.enumerated().map { $0.element ^ mask[$0.offset] }), port: port)
        default:
            return nil
        }
    }
}

extension STUNMessage {
    /// The decoded XOR-MAPPED-ADDRESS, if present and well-formed.
    public var xorMappedAddress: TransportAddress? {
        attribute(.xorMappedAddress).flatMap { TransportAddress.xorDecoded($0.value, transactionID: transactionID) }
    }
}
