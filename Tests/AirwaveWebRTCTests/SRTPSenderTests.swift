import Testing

@testable import AirwaveWebRTC

/// The OpenSSL AEAD_AES_128_GCM sender must produce exactly what libsrtp produces, so any
/// receiver (browsers, aiortc, libsrtp) decrypts it.
@Suite("SRTP AES-GCM sender (OpenSSL)")
struct SRTPGCMSenderTests {
    static let material = SRTPKeyingMaterial(profile: .aeadAES128GCM, exported: (0..<56).map { UInt8(($0 * 37 + 11) & 0xFF) })

    static func packet(sequence: UInt16, ssrc: UInt32 = 0x1234_5678, csrcs: [UInt32] = [],
                       extension: RTPPacket.Extension? = nil, payload: [UInt8] = Array(0..<90)) -> [UInt8] {
        var packet = RTPPacket(marker: sequence == 0, payloadType: 111, sequenceNumber: sequence, timestamp: 960 * UInt32(sequence),
                               ssrc: ssrc, payload: payload)
        packet.csrcs = csrcs
        packet.headerExtension = `extension`
        return packet.serialized()
    }

    @Test func matchesLibsrtpByteForByteAcrossASequenceWrap() throws {
        let fast = try SRTPSession(keyingMaterial: Self.material, role: .server)
        let reference = try SRTPSession(keyingMaterial: Self.material, role: .server, openSSLForGCM: false)
        let receiver = try SRTPSession(keyingMaterial: Self.material, role: .client)
        let sequences: [UInt16] = [65533, 65534, 65535, 0, 1, 2]
        for sequence in sequences {
            var ours = Self.packet(sequence: sequence)
            var theirs = ours
            let plain = ours
            try fast.protectRTP(&ours)
            try reference.protectRTP(&theirs)
            #expect(ours == theirs, "sequence \(sequence)")
            #expect(ours.count == plain.count + 16)
            try receiver.unprotectRTP(&ours)
            #expect(ours == plain)
        }
    }

    @Test func headersWithCSRCsAndAnExtensionAreAuthenticatedNotEncrypted() throws {
        let fast = try SRTPSession(keyingMaterial: Self.material, role: .client)
        let reference = try SRTPSession(keyingMaterial: Self.material, role: .client, openSSLForGCM: false)
        var ours = Self.packet(sequence: 7, csrcs: [1, 2], extension: .init(profile: 0xBEDE, data: [0x10, 0xFF, 0, 0]))
        var theirs = ours
        try fast.protectRTP(&ours)
        try reference.protectRTP(&theirs)
        #expect(ours == theirs)
    }

    @Test func aRetransmissionFromBeforeTheWrapKeepsItsRolloverCounter() throws {
        let fast = try SRTPSession(keyingMaterial: Self.material, role: .server)
        let reference = try SRTPSession(keyingMaterial: Self.material, role: .server, openSSLForGCM: false)
        for sequence: UInt16 in [65535, 0, 1] {
            var a = Self.packet(sequence: sequence)
            var b = a
            try fast.protectRTP(&a)
            try reference.protectRTP(&b)
        }
        var ours = Self.packet(sequence: 65535)  // a NACK answer after the wrap
        var theirs = ours
        try fast.protectRTP(&ours)
        try reference.protectRTP(&theirs)
        #expect(ours == theirs)
    }

    @Test func aPacketShorterThanItsHeaderIsRefused() throws {
        let fast = try SRTPSession(keyingMaterial: Self.material, role: .server)
        var truncated = Array(Self.packet(sequence: 1, csrcs: [1, 2, 3])[0..<16])
        #expect(throws: SRTPError.self) { try fast.protectRTP(&truncated) }
    }
}
