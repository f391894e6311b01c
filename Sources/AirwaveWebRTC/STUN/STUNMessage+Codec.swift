extension STUNMessage {
    /// Parses a datagram as STUN. Checks the header (two zero bits, the magic cookie, a length
    /// that is a multiple of four and matches the datagram), every attribute length, and that
    /// nothing but FINGERPRINT follows MESSAGE-INTEGRITY… as RFC 8489 requires: attributes after
    /// FINGERPRINT are rejected, attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are
    /// ignored. If a FINGERPRINT is present it must be correct. MESSAGE-INTEGRITY is checked
    /// separately (`verifyMessageIntegrity`), because the key depends on the USERNAME.
    public static func parse(_ datagram: [UInt8]) throws(STUNError) -> STUNMessage {
        try parse(datagram[...])
    }

    public static func parse(_ datagram: ArraySlice<UInt8>) throws(STUNError) -> STUNMessage {
        var reader = ByteReader(datagram)
        guard let type = reader.readUInt16(), let length = reader.readUInt16(),
              let cookie = reader.readUInt32(), let transactionID = reader.readBytes(12)
        else { throw .tooShort }
        guard type & 0xC000 == 0, cookie == magicCookie else { throw .notSTUN }
        guard length % 4 == 0, Int(length) == reader.remaining else { throw .badLength }
        let (method, messageClass) = split(type: type)
        var attributes: [STUNAttribute] = []
        var sawIntegrity = false
        while reader.remaining > 0 {
            let attributeStart = reader.index
            guard let attributeType = reader.readUInt16(), let attributeLength = reader.readUInt16(),
                  let value = reader.readBytes(Int(attributeLength))
            else { throw .truncatedAttribute }
            let padding = (4 - Int(attributeLength) % 4) % 4
            guard reader.skip(padding) else { throw .truncatedAttribute }
            if attributeType == STUNAttributeType.fingerprint.rawValue {
                guard reader.remaining == 0 else { throw .attributeAfterFingerprint }
                guard attributeLength == 4 else { throw .badFingerprint }
                var covered = Array(datagram[datagram.startIndex..<attributeStart])
                covered.setUInt16(UInt16(attributeStart - datagram.startIndex - 20 + 8), at: 2)
                var valueReader = ByteReader(value)
                guard valueReader.readUInt32() == CRC32.checksum(covered) ^ fingerprintXor else { throw .badFingerprint }
            } else if sawIntegrity {
                continue
            }
            if attributeType == STUNAttributeType.messageIntegrity.rawValue { sawIntegrity = true }
            attributes.append(STUNAttribute(type: attributeType, value: Array(value)))
        }
        return STUNMessage(method: method, messageClass: messageClass, transactionID: Array(transactionID),
                           attributes: attributes)
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1, short-term credential: the key is the password's
    /// bytes) over the received datagram. Throws `missingMessageIntegrity` if there is none.
    public static func verifyMessageIntegrity(_ datagram: [UInt8], password: String) throws(STUNError) {
        try verifyMessageIntegrity(datagram[...], key: Array(password.utf8))
    }

    /// Like `verifyMessageIntegrity(_:password:)` with an explicit HMAC key (long-term
    /// credentials use MD5(username:realm:password)).
    public static func verifyMessageIntegrity(_ datagram: ArraySlice<UInt8>, key: [UInt8]) throws(STUNError) {
        var reader = ByteReader(datagram)
        guard reader.skip(20) else { throw .tooShort }
        while reader.remaining > 0 {
            let attributeStart = reader.index
            guard let attributeType = reader.readUInt16(), let attributeLength = reader.readUInt16(),
                  let value = reader.readBytes(Int(attributeLength)), reader.skip((4 - Int(attributeLength) % 4) % 4)
            else { throw .truncatedAttribute }
            guard attributeType == STUNAttributeType.messageIntegrity.rawValue else { continue }
            guard attributeLength == 20 else { throw .badMessageIntegrity }
            var covered = Array(datagram[datagram.startIndex..<attributeStart])
            covered.setUInt16(UInt16(attributeStart - datagram.startIndex - 20 + 24), at: 2)
            let expected = Crypto.hmacSHA1(key: key, data: covered[...])
            guard constantTimeEqual(expected, Array(value)) else { throw .badMessageIntegrity }
            return
        }
        throw .missingMessageIntegrity
    }

    /// Serializes the message, then appends MESSAGE-INTEGRITY keyed with `integrityPassword`
    /// (if given) and FINGERPRINT (if asked), each computed over everything before it.
    public func serialized(integrityPassword: String? = nil, fingerprint: Bool = false) -> [UInt8] {
        serialized(integrityKey: integrityPassword.map { Array($0.utf8) }, fingerprint: fingerprint)
    }

    public func serialized(integrityKey: [UInt8]?, fingerprint: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        bytes.appendUInt16(messageType)
        bytes.appendUInt16(0)
        bytes.appendUInt32(Self.magicCookie)
        bytes += transactionID
        for attribute in attributes {
            bytes.appendUInt16(attribute.type)
            bytes.appendUInt16(UInt16(truncatingIfNeeded: attribute.value.count))
            bytes += attribute.value
            bytes.padToFourBytes()
        }
        if let integrityKey {
            bytes.setUInt16(UInt16(truncatingIfNeeded: bytes.count - 20 + 24), at: 2)
            let mac = Crypto.hmacSHA1(key: integrityKey, data: bytes[...])
            bytes.appendUInt16(STUNAttributeType.messageIntegrity.rawValue)
            bytes.appendUInt16(20)
            bytes += mac
        }
        if fingerprint {
            bytes.setUInt16(UInt16(truncatingIfNeeded: bytes.count - 20 + 8), at: 2)
            let crc = CRC32.checksum(bytes) ^ Self.fingerprintXor
            bytes.appendUInt16(STUNAttributeType.fingerprint.rawValue)
            bytes.appendUInt16(4)
            bytes.appendUInt32(crc)
        }
        bytes.setUInt16(UInt16(truncatingIfNeeded: bytes.count - 20), at: 2)
        return bytes
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
