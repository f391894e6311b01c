import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// One Opus encoder per speaker that sends PCM (kind 2), owned by the event's driver task.
/// Listeners always receive Opus: the encoded packets carry the server's own sequence numbers
/// and 48 kHz timestamps.
struct SpeakerEncoders {
    private var encoders: [ConnectionID: PCMOpusEncoder] = [:]

    mutating func encode(_ pcm: MediaFrame, speaker: ConnectionID) -> [MediaFrame] {
        let channels = pcm.header.flags.contains(.stereo) ? 2 : 1
        var packets: [EncodedPacket] = []
        let encoder: PCMOpusEncoder
        if let existing = encoders[speaker] {
            if existing.channels != channels {
                // Pads and encodes the partial frame, then continues the sequence with the new layout.
                packets += (try? existing.switchChannels(to: channels)) ?? []
            }
            encoder = existing
        } else {
            guard let made = try? PCMOpusEncoder(channels: channels) else { return [] }
            encoder = made
            encoders[speaker] = made
        }
        packets += pcm.payload.withUnsafeReadableBytes { (bytes: UnsafeRawBufferPointer) in encoder.append(bytes) }
        return packets.map { packet in
            MediaFrame(
                header: MediaFrameHeader(kind: .opus, sourceID: pcm.header.sourceID, sequence: packet.sequence, timestamp: packet.timestamp),
                payload: ByteBuffer(bytes: packet.bytes))
        }
    }

    mutating func remove(_ speaker: ConnectionID) {
        encoders[speaker] = nil
    }
}
