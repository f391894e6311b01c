import COpus

/// An error code returned by libopus (`OPUS_BAD_ARG`, `OPUS_INVALID_PACKET`, …), with
/// libopus's own description of it.
public struct OpusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The negative libopus error code, e.g. `-4` for `OPUS_INVALID_PACKET`.
    public let code: Int32

    /// Wraps a libopus error code.
    public init(code: Int32) {
        self.code = code
    }

    /// `OPUS_BAD_ARG` (-1): an argument was invalid or out of range.
    public static let badArgument = OpusError(code: OPUS_BAD_ARG)
    /// `OPUS_BUFFER_TOO_SMALL` (-2): the output buffer could not hold the result.
    public static let bufferTooSmall = OpusError(code: OPUS_BUFFER_TOO_SMALL)
    /// `OPUS_INTERNAL_ERROR` (-3).
    public static let internalError = OpusError(code: OPUS_INTERNAL_ERROR)
    /// `OPUS_INVALID_PACKET` (-4): the packet is corrupt or of an unsupported layout.
    public static let invalidPacket = OpusError(code: OPUS_INVALID_PACKET)

    /// libopus's text for the code (`opus_strerror`), followed by the code.
    public var description: String {
        "\(String(cString: opus_strerror(code))) (libopus \(code))"
    }
}

/// The libopus version string, e.g. `"libopus 1.3.1"`.
public var libopusVersion: String {
    String(cString: opus_get_version_string())
}
