/// A parsed SDP session description (RFC 8866), as far as WebRTC offers need: session-level
/// attributes and one `MediaDescription` per `m=` line. Unknown lines are kept as attributes
/// or skipped; structure errors and oversize input are rejected.
public struct SessionDescription: Equatable, Sendable {
    /// An `a=` line: `name` and the text after the first colon, if any.
    public struct Attribute: Equatable, Sendable {
        public var name: String
        public var value: String?

        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    public var origin: String
    public var attributes: [Attribute]
    public var media: [MediaDescription]

    /// The first session-level attribute value named `name`.
    public func value(of name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    /// Whether the session carries the flag attribute `name` (e.g. `ice-lite`).
    public func has(_ name: String) -> Bool {
        attributes.contains { $0.name == name }
    }

    /// The mids of `a=group:BUNDLE`, if there is one.
    public var bundleMids: [String]? {
        for attribute in attributes where attribute.name == "group" {
            let parts = (attribute.value ?? "").split(separator: " ").map(String.init)
            if parts.first == "BUNDLE" { return Array(parts.dropFirst()) }
        }
        return nil
    }
}

/// One `m=` section.
public struct MediaDescription: Equatable, Sendable {
    /// `audio`, `video`, `application`, …
    public var kind: String
    public var port: UInt16
    /// `UDP/TLS/RTP/SAVPF` for WebRTC media.
    public var proto: String
    /// Payload types (as text, since `application` sections use names).
    public var formats: [String]
    public var connection: String?
    public var attributes: [SessionDescription.Attribute]

    public func value(of name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    public func values(of name: String) -> [String] {
        attributes.compactMap { $0.name == name ? $0.value : nil }
    }

    public func has(_ name: String) -> Bool {
        attributes.contains { $0.name == name }
    }

    public var mid: String? { value(of: "mid") }

    /// The direction attribute; `sendrecv` when absent (RFC 8866 §6.7).
    public var direction: MediaDirection {
        for attribute in attributes {
            if let direction = MediaDirection(rawValue: attribute.name) { return direction }
        }
        return .sendrecv
    }

    /// `a=rtpmap` entries by payload type.
    public var rtpMaps: [RTPMap] {
        values(of: "rtpmap").compactMap(RTPMap.init(attributeValue:))
    }

    /// The `a=fmtp` parameters of payload type `payloadType`, verbatim.
    public func formatParameters(_ payloadType: UInt8) -> String? {
        for value in values(of: "fmtp") {
            let parts = value.split(separator: " ", maxSplits: 1)
            if parts.count == 2, UInt8(parts[0]) == payloadType { return String(parts[1]) }
        }
        return nil
    }

    /// The `a=rtcp-fb` values for `payloadType` (or `*`), e.g. `nack`, `nack pli`, `ccm fir`.
    public func feedback(_ payloadType: UInt8) -> [String] {
        values(of: "rtcp-fb").compactMap { value in
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0] == "*" || UInt8(parts[0]) == payloadType else { return nil }
            return String(parts[1])
        }
    }

    /// SSRCs announced with `a=ssrc`, in order, without duplicates.
    public var ssrcs: [UInt32] {
        var seen: [UInt32] = []
        for value in values(of: "ssrc") {
            if let ssrc = value.split(separator: " ").first.flatMap({ UInt32($0) }), !seen.contains(ssrc) {
                seen.append(ssrc)
            }
        }
        return seen
    }
}

/// `a=sendrecv` / `sendonly` / `recvonly` / `inactive`.
public enum MediaDirection: String, Sendable {
    case sendrecv, sendonly, recvonly, inactive
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]`.
public struct RTPMap: Equatable, Sendable {
    public var payloadType: UInt8
    public var encoding: String
    public var clockRate: UInt32
    public var channels: UInt8?

    public init(payloadType: UInt8, encoding: String, clockRate: UInt32, channels: UInt8? = nil) {
        self.payloadType = payloadType
        self.encoding = encoding
        self.clockRate = clockRate
        self.channels = channels
    }

    init?(attributeValue: String) {
        let parts = attributeValue.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let payloadType = UInt8(parts[0]), payloadType < 128 else { return nil }
        let codec = parts[1].split(separator: "/", omittingEmptySubsequences: false)
        guard codec.count == 2 || codec.count == 3, !codec[0].isEmpty, let clockRate = UInt32(codec[1]) else { return nil }
        self.payloadType = payloadType
        self.encoding = String(codec[0])
        self.clockRate = clockRate
        if codec.count == 3 {
            guard let channels = UInt8(codec[2]) else { return nil }
            self.channels = channels
        } else {
            self.channels = nil
        }
    }

    public var attributeValue: String {
        "\(payloadType) \(encoding)/\(clockRate)" + (channels.map { "/\($0)" } ?? "")
    }
}

/// Why an SDP text was rejected.
public enum SDPError: Error, Equatable, Sendable {
    case tooLarge
    case malformedLine(Int)
    case missingVersion
    case malformedMediaLine(Int)
    case tooManyMediaSections
}
