import AirwaveWebRTC

/// What a WHEP listener needs from the server's SDP answer: the server's ICE credentials, its
/// certificate fingerprint, the DTLS role left to the listener, and the address to send checks
/// to (the first host candidate of the wanted address family).
public struct WHEPAnswer: Sendable, Equatable {
    /// The server's ICE credentials: checks go as `serverUfrag:listenerUfrag`, signed with the password.
    public var serverUfrag: String
    public var serverPassword: String
    /// The server certificate's fingerprint, checked after the DTLS handshake.
    public var serverFingerprint: CertificateFingerprint
    /// The listener's DTLS role: the server answering `a=setup:passive` makes it the client.
    public var dtlsRole: DTLSRole
    /// Where the listener sends STUN checks, DTLS and RTCP.
    public var serverAddress: TransportAddress
    /// `a=ice-lite` at session level.
    public var iceLite: Bool
    /// The accepted audio section's Opus payload type.
    public var audioPayloadType: UInt8

    /// An answer from its parts (tests; `init(sdp:)` parses one).
    public init(serverUfrag: String, serverPassword: String, serverFingerprint: CertificateFingerprint,
                dtlsRole: DTLSRole, serverAddress: TransportAddress, iceLite: Bool, audioPayloadType: UInt8) {
        self.serverUfrag = serverUfrag
        self.serverPassword = serverPassword
        self.serverFingerprint = serverFingerprint
        self.dtlsRole = dtlsRole
        self.serverAddress = serverAddress
        self.iceLite = iceLite
        self.audioPayloadType = audioPayloadType
    }

    /// Why an answer is unusable.
    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case sdp(SDPError)
        case noAudio
        case missingICECredentials
        case missingFingerprint
        case unsupportedSetup(String)
        case noCandidate

        public var description: String {
            switch self {
            case let .sdp(error): "answer SDP: \(error)"
            case .noAudio: "answer has no accepted audio section"
            case .missingICECredentials: "answer has no ice-ufrag/ice-pwd"
            case .missingFingerprint: "answer has no fingerprint"
            case let .unsupportedSetup(setup): "answer has a=setup:\(setup)"
            case .noCandidate: "answer has no usable host candidate"
            }
        }
    }

    /// Parses the answer. `preferIPv4` picks the first IPv4 candidate when there are several
    /// (the load generator binds 127.0.0.1).
    public init(sdp: String, preferIPv4: Bool = true) throws(ParseError) {
        let description: SessionDescription
        do { description = try SessionDescription.parse(sdp) } catch { throw .sdp(error) }
        guard let audio = description.media.first(where: { $0.kind == "audio" && $0.port != 0 }) else { throw .noAudio }
        guard let ufrag = audio.value(of: "ice-ufrag") ?? description.value(of: "ice-ufrag"),
              let password = audio.value(of: "ice-pwd") ?? description.value(of: "ice-pwd"),
              !ufrag.isEmpty, !password.isEmpty
        else { throw .missingICECredentials }
        let fingerprints = (audio.values(of: "fingerprint")
            + description.attributes.filter { $0.name == "fingerprint" }.compactMap(\.value))
            .compactMap(CertificateFingerprint.init(attributeValue:))
        guard let fingerprint = fingerprints.first(where: { $0.algorithm == "sha-256" }) ?? fingerprints.first else {
            throw .missingFingerprint
        }
        let setup = audio.value(of: "setup") ?? description.value(of: "setup") ?? "passive"
        let role: DTLSRole
        switch setup {
        case "passive": role = .client
        case "active": role = .server
        default: throw .unsupportedSetup(setup)
        }
        let candidates = audio.values(of: "candidate").compactMap(Self.hostCandidate)
        let chosen = preferIPv4 ? (candidates.first { !$0.isIPv6Address } ?? candidates.first) : candidates.first
        guard let address = chosen else { throw .noCandidate }
        let payloadType = audio.formats.first.flatMap { UInt8($0) } ?? 111
        self.init(serverUfrag: ufrag, serverPassword: password, serverFingerprint: fingerprint, dtlsRole: role,
                  serverAddress: address, iceLite: description.has("ice-lite"), audioPayloadType: payloadType)
    }

    /// `<foundation> <component> udp <priority> <ip> <port> typ host …` → the address of a
    /// component-1 UDP candidate.
    static func hostCandidate(_ value: String) -> TransportAddress? {
        let parts = value.split(separator: " ")
        guard parts.count >= 8, parts[1] == "1", parts[2].lowercased() == "udp", parts[6] == "typ",
              let port = UInt16(parts[5]) else { return nil }
        return TransportAddress(host: String(parts[4]), port: port)
    }
}
