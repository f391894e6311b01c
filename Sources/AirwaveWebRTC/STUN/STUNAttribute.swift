/// Attribute types AirwaveWebRTC reads or writes.
public enum STUNAttributeType: UInt16, Sendable {
    case mappedAddress = 0x0001
    case username = 0x0006
    case messageIntegrity = 0x0008
    case errorCode = 0x0009
    case unknownAttributes = 0x000A
    case realm = 0x0014
    case nonce = 0x0015
    case xorMappedAddress = 0x0020
    case priority = 0x0024
    case useCandidate = 0x0025
    case software = 0x8022
    case fingerprint = 0x8028
    case iceControlled = 0x8029
    case iceControlling = 0x802A
}

/// One type-length-value attribute; `value` excludes the padding.
public struct STUNAttribute: Equatable, Sendable {
    public var type: UInt16
    public var value: [UInt8]

    public init(type: UInt16, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    public init(_ type: STUNAttributeType, value: [UInt8]) {
        self.init(type: type.rawValue, value: value)
    }

    public static func username(_ name: String) -> STUNAttribute {
        STUNAttribute(.username, value: Array(name.utf8))
    }

    public static func software(_ name: String) -> STUNAttribute {
        STUNAttribute(.software, value: Array(name.utf8))
    }

    public static func xorMappedAddress(_ address: TransportAddress, transactionID: [UInt8]) -> STUNAttribute {
        STUNAttribute(.xorMappedAddress, value: address.xorEncoded(transactionID: transactionID))
    }

    public static func errorCode(_ code: Int, reason: String) -> STUNAttribute {
        var value: [UInt8] = [0, 0, UInt8(code / 100), UInt8(code % 100)]
        value += Array(reason.utf8)
        return STUNAttribute(.errorCode, value: value)
    }

    /// The value as UTF-8 text, if it is.
    public var stringValue: String? {
        String(validating: value, as: UTF8.self)
    }

    /// A 32-bit big-endian value (PRIORITY).
    public var uint32Value: UInt32? {
        guard value.count == 4 else { return nil }
        var reader = ByteReader(value)
        return reader.readUInt32()
    }

    /// A 64-bit value (ICE-CONTROLLING / ICE-CONTROLLED tie breaker).
    public var uint64Value: UInt64? {
        guard value.count == 8 else { return nil }
        return value.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
