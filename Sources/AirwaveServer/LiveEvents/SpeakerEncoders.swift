import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// One Opus encoder per speaker that sends PCM (kind 2). Listeners always receive Opus: the
/// encoded packets carry the server's own sequence numbers and 48 kHz timestamps.
///
/// Each encoder lives on its speaker's event loop and encodes there, never in the event's task:
/// a speaker's PCM costs its own connection's loop (bounded by the PCM budget of
/// `InboundRules`), so it cannot stall the event's chat, other speakers or other events.
/// A speaker's frames reach one loop in order and are handed back in order.
struct SpeakerEncoders {
    private var encoders: [ConnectionID: NIOLoopBoundBox<PCMOpusEncoder?>] = [:]

    /// Encodes `pcm` on the speaker's event loop and hands the packets to `deliver` there.
    /// `loop` is the speaker's socket's (for an edge's client, its link's).
    mutating func encode(_ pcm: MediaFrame, speaker: ConnectionID, on loop: any EventLoop,
                         deliver: @escaping @Sendable ([MediaFrame]) -> Void) {
        let box: NIOLoopBoundBox<PCMOpusEncoder?>
        if let existing = encoders[speaker] {
            box = existing
        } else {
            box = NIOLoopBoundBox.makeEmptyBox(valueType: PCMOpusEncoder.self, eventLoop: loop)
            encoders[speaker] = box
        }
        loop.execute {
            deliver(Self.encode(pcm, with: box))
        }
    }

    mutating func remove(_ speaker: ConnectionID) {
        encoders[speaker] = nil
    }

    /// Runs on the speaker's event loop.
    private static func encode(_ pcm: MediaFrame, with box: NIOLoopBoundBox<PCMOpusEncoder?>) -> [MediaFrame] {
        let channels = pcm.header.flags.contains(.stereo) ? 2 : 1
        var packets: [EncodedPacket] = []
        let encoder: PCMOpusEncoder
        if let existing = box.value {
            if existing.channels != channels {
                // Pads and encodes the partial frame, then continues the sequence with the new layout.
                packets += (try? existing.switchChannels(to: channels)) ?? []
            }
            encoder = existing
        } else {
            guard let made = try? PCMOpusEncoder(channels: channels) else { return [] }
            encoder = made
            box.value = made
        }
        packets += pcm.payload.withUnsafeReadableBytes { (bytes: UnsafeRawBufferPointer) in encoder.append(bytes) }
        return packets.map { packet in
            MediaFrame(
                header: MediaFrameHeader(kind: .opus, sourceID: pcm.header.sourceID, sequence: packet.sequence, timestamp: packet.timestamp),
                payload: ByteBuffer(bytes: packet.bytes))
        }
    }
}
