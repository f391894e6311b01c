import AirwaveCore
import Foundation
import AirwaveProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import AirwaveServer

/// PCM is encoded on the speaker's event loop, never in the event's task (issue 13: a long PCM
/// frame encoded in the event's task stalled chat in another event): `encode` only schedules.
@Suite struct SpeakerEncodersTests {
    /// 20 ms of a 440 Hz tone, 48 kHz mono, 16-bit little-endian.
    static func pcm(sequence: UInt32) -> MediaFrame {
        var payload = ByteBuffer()
        for i in 0..<960 {
            let phase: Double = 2 * Double.pi * 440 * Double(i) / 48000
            let sample = Int16(8000 * sin(phase))
            payload.writeInteger(sample, endianness: .little)
        }
        return MediaFrame(header: MediaFrameHeader(kind: .pcm, sourceID: 7, sequence: sequence, timestamp: sequence * 960), payload: payload)
    }

    @Test func encodingRunsOnTheSpeakersLoopAndHandsBackOpusInOrder() throws {
        let loop = EmbeddedEventLoop()
        var encoders = SpeakerEncoders()
        let delivered = NIOLockedValueBox<[[MediaFrame]]>([])
        for sequence in UInt32(0)..<3 {
            encoders.encode(Self.pcm(sequence: sequence), speaker: ConnectionID(1), on: loop) { packets in
                delivered.withLockedValue { $0.append(packets) }
            }
        }
        // Nothing was encoded by the caller (the event's task): the work waits on the speaker's loop.
        #expect(delivered.withLockedValue { $0.isEmpty })
        loop.run()
        let batches = delivered.withLockedValue { $0 }
        #expect(batches.count == 3)
        let packets = batches.flatMap { $0 }
        #expect(packets.count == 3)
        #expect(packets.allSatisfy { $0.header.kind == .opus && $0.header.sourceID == 7 })
        #expect(packets.map(\.header.sequence) == packets.map(\.header.sequence).sorted())
        try loop.syncShutdownGracefully()
    }
}
