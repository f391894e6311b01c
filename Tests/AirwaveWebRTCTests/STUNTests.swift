import AirwaveWebRTCFuzzing
import Testing

@testable import AirwaveWebRTC

@Suite struct STUNTests {
    @Test func rfc5769SampleRequestParsesAndVerifies() throws {
        let message = try STUNMessage.parse(STUNTestVectors.request)
        #expect(message.messageClass == .request)
        #expect(message.method == STUNMessage.bindingMethod)
        #expect(message.transactionID == [0xB7, 0xE7, 0xA7, 0x01, 0xBC, 0x34, 0xD6, 0x86, 0xFA, 0x87, 0xDF, 0xAE])
        #expect(message.attribute(.software)?.stringValue == "STUN test client")
        #expect(message.attribute(.priority)?.uint32Value == 0x6E00_01FF)
        #expect(message.attribute(.iceControlled)?.uint64Value == 0x932F_F9B1_5126_3B36)
        #expect(message.attribute(.username)?.stringValue == "evtj:h6vY")
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.request, password: STUNTestVectors.password)
    }

    @Test func rfc5769IPv4ResponseDecodesTheMappedAddress() throws {
        let message = try STUNMessage.parse(STUNTestVectors.ipv4Response)
        #expect(message.messageClass == .successResponse)
        #expect(message.attribute(.software)?.stringValue == "test vector")
        #expect(message.xorMappedAddress == TransportAddress(host: "192.0.2.1", port: 32853))
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.ipv4Response, password: STUNTestVectors.password)
    }

    @Test func rfc5769IPv6ResponseDecodesTheMappedAddress() throws {
        let message = try STUNMessage.parse(STUNTestVectors.ipv6Response)
        #expect(message.xorMappedAddress == TransportAddress(host: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853))
        #expect(message.xorMappedAddress?.host == "2001:db8:1234:5678:11:2233:4455:6677")
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.ipv6Response, password: STUNTestVectors.password)
    }

    @Test func theXorMappedAddressEncodingMatchesTheVectors() throws {
        let ipv4 = try STUNMessage.parse(STUNTestVectors.ipv4Response)
        let ipv6 = try STUNMessage.parse(STUNTestVectors.ipv6Response)
        #expect(STUNAttribute.xorMappedAddress(try #require(ipv4.xorMappedAddress), transactionID: ipv4.transactionID)
            == ipv4.attribute(.xorMappedAddress))
        #expect(STUNAttribute.xorMappedAddress(try #require(ipv6.xorMappedAddress), transactionID: ipv6.transactionID)
            == ipv6.attribute(.xorMappedAddress))
    }

    @Test func aWrongPasswordOrAChangedByteFailsTheChecks() throws {
        #expect(throws: STUNError.badMessageIntegrity) {
            try STUNMessage.verifyMessageIntegrity(STUNTestVectors.request, password: "wrong")
        }
        var tampered = STUNTestVectors.request
        tampered[30] ^= 0x01  // inside SOFTWARE
        #expect(throws: STUNError.badFingerprint) { try STUNMessage.parse(tampered) }
        #expect(throws: STUNError.badMessageIntegrity) {
            try STUNMessage.verifyMessageIntegrity(tampered, password: STUNTestVectors.password)
        }
    }

    @Test func aBuiltMessageCarriesVerifiableIntegrityAndFingerprint() throws {
        let message = STUNMessage(
            messageClass: .request, transactionID: Array(repeating: 7, count: 12),
            attributes: [.username("a:b"), STUNAttribute(.useCandidate, value: [])])
        let bytes = message.serialized(integrityPassword: "secret", fingerprint: true)
        let parsed = try STUNMessage.parse(bytes)
        #expect(parsed.attribute(.username)?.stringValue == "a:b")
        #expect(parsed.attribute(.useCandidate) != nil)
        #expect(parsed.attribute(.messageIntegrity)?.value.count == 20)
        #expect(Array(bytes[(bytes.count - 8)..<(bytes.count - 4)]) == [0x80, 0x28, 0x00, 0x04])
        try STUNMessage.verifyMessageIntegrity(bytes, password: "secret")
    }

    @Test func theMessageTypeRoundTripsMethodAndClass() {
        for messageClass in [STUNMessage.Class.request, .indication, .successResponse, .errorResponse] {
            let message = STUNMessage(method: 0x0ABC, messageClass: messageClass, transactionID: Array(repeating: 0, count: 12))
            let split = STUNMessage.split(type: message.messageType)
            #expect(split.method == 0x0ABC)
            #expect(split.messageClass == messageClass)
        }
        #expect(STUNMessage(messageClass: .successResponse, transactionID: Array(repeating: 0, count: 12)).messageType == 0x0101)
    }

    @Test func crc32HasTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test(arguments: [
        [UInt8](),
        Array(STUNTestVectors.request.prefix(19)),
        Array(STUNTestVectors.request.prefix(30)),
    ])
    func truncatedMessagesAreRejected(bytes: [UInt8]) {
        #expect(throws: STUNError.self) { try STUNMessage.parse(bytes) }
    }

    @Test func malformedHeadersAreRejectedWithTheirReason() {
        var badCookie = STUNTestVectors.request
        badCookie[4] = 0
        #expect(throws: STUNError.notSTUN) { try STUNMessage.parse(badCookie) }
        var topBits = STUNTestVectors.request
        topBits[0] = 0x80
        #expect(throws: STUNError.notSTUN) { try STUNMessage.parse(topBits) }
        var longer = STUNTestVectors.request
        longer[3] = 0x5C  // says 4 more bytes than there are
        #expect(throws: STUNError.badLength) { try STUNMessage.parse(longer) }
        var unaligned = STUNTestVectors.request
        unaligned[3] = 0x57
        #expect(throws: STUNError.badLength) { try STUNMessage.parse(unaligned) }
        var attributeTooLong = STUNTestVectors.request
        attributeTooLong[23] = 0xFF  // SOFTWARE claims 255 bytes
        #expect(throws: STUNError.truncatedAttribute) { try STUNMessage.parse(attributeTooLong) }
    }

    @Test func anAttributeAfterFingerprintIsRejected() {
        var bytes = STUNTestVectors.request + [0x80, 0x22, 0x00, 0x00]
        bytes[3] += 4
        #expect(throws: STUNError.attributeAfterFingerprint) { try STUNMessage.parse(bytes) }
    }

    @Test func socketAddressesParseAndPrint() {
        #expect(TransportAddress(host: "10.0.0.1", port: 1)?.description == "10.0.0.1:1")
        #expect(TransportAddress(host: "::1", port: 2)?.description == "[::1]:2")
        #expect(TransportAddress(host: "fe80::1:0:0:2", port: 3)?.host == "fe80::1:0:0:2")
        #expect(TransportAddress(host: "256.0.0.1", port: 1) == nil)
        #expect(TransportAddress(host: "1::2::3", port: 1) == nil)
        #expect(TransportAddress(host: "1:2:3:4:5:6:7:8:9", port: 1) == nil)
    }
}
