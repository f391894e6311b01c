import AirwaveProtocol

/// The error a decoder throws for `text`, or nil if it decodes.
func decodingFailure<T>(_ text: String, _ decode: ([UInt8]) throws(ProtocolError) -> T) -> ProtocolError? {
    do {
        _ = try decode(Array(text.utf8))
        return nil
    } catch {
        return error
    }
}
