/// A STUN message (RFC 8489): a 20-byte header and a list of attributes.
///
/// `parse` checks every length against the datagram and keeps the raw bytes, so that
/// MESSAGE-INTEGRITY and FINGERPRINT can be verified over exactly what was received.
public struct STUNMessage: Equatable, Sendable {
    /// RFC 8489's fixed magic cookie.
    public static let magicCookie: UInt32 = 0x2112_A442
    /// XORed into FINGERPRINT's CRC-32.
    static let fingerprintXor: UInt32 = 0x5354_554E

    public enum Class: UInt16, Sendable {
        case request = 0x0000
        case indication = 0x0010
        case successResponse = 0x0100
        case errorResponse = 0x0110
    }

    /// The method: Binding is 0x001, the only one ICE uses.
    public var method: UInt16
    public var messageClass: Class
    /// 12 random bytes that pair a response with its request.
    public var transactionID: [UInt8]
    public var attributes: [STUNAttribute]

    public static let bindingMethod: UInt16 = 0x0001

    public init(method: UInt16 = STUNMessage.bindingMethod, messageClass: Class, transactionID: [UInt8],
                attributes: [STUNAttribute] = []) {
        precondition(transactionID.count == 12, "a STUN transaction ID has 12 bytes")
        self.method = method
        self.messageClass = messageClass
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// The 14-bit message type: method bits interleaved with the two class bits.
    var messageType: UInt16 {
        let m = method & 0x0FFF
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | messageClass.rawValue
    }

    static func split(type: UInt16) -> (method: UInt16, messageClass: Class) {
        let method = (type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80)
        let messageClass = Class(rawValue: type & 0x0110)!  // the mask leaves exactly the four classes
        return (method, messageClass)
    }

    /// The first attribute of this type.
    public func attribute(_ type: STUNAttributeType) -> STUNAttribute? {
        attributes.first { $0.type == type.rawValue }
    }
}

/// Why a datagram is not a usable STUN message.
public enum STUNError: Error, Equatable, Sendable {
    case tooShort
    case notSTUN
    case badLength
    case truncatedAttribute
    case attributeAfterFingerprint
    case badFingerprint
    case badMessageIntegrity
    case missingMessageIntegrity
}
