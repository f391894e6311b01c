import AirwaveMedia
import Foundation
import Testing

@Suite("Audio levels (RFC 6464)")
struct AudioLevelTests {
    @Test("a −6 dBFS sine is −9 dBov RMS, −6 dBov peak, RFC 6464 level 9")
    func toneFixture() throws {
        let level = AudioLevel(samples: try MediaFixtures.readPCM("tone-440hz-mono.pcm"))
        #expect(abs(level.rmsDBov - -9.03) < 0.05, "\(level.rmsDBov)")
        #expect(abs(level.peakDBov - -6.02) < 0.05, "\(level.peakDBov)")
        #expect(level.rfc6464Level == 9)
    }

    @Test("full-scale sine and square: −3 and 0 dBov")
    func fullScale() {
        let sine = (0..<48_000).map { Int16((32_767 * sin(2 * Double.pi * 1000 * Double($0) / 48_000)).rounded()) }
        let sineLevel = AudioLevel(samples: sine)
        #expect(abs(sineLevel.rmsDBov - -3.01) < 0.05)
        #expect(sineLevel.rfc6464Level == 3)
        #expect(sineLevel.peakDBov > -0.01)
        let square = (0..<4800).map { $0 % 2 == 0 ? Int16.min : Int16.max }
        let squareLevel = AudioLevel(samples: square)
        #expect(squareLevel.rfc6464Level == 0)
        #expect(squareLevel.peakDBov == 0)
    }

    @Test("silence and nothing are level 127")
    func silence() {
        for samples in [[Int16](repeating: 0, count: 960), []] {
            let level = AudioLevel(samples: samples)
            #expect(level.rmsDBov == AudioLevel.floorDBov)
            #expect(level.peakDBov == AudioLevel.floorDBov)
            #expect(level.rfc6464Level == 127)
        }
        // One LSB of noise is about −90 dBov, still within the scale.
        let quiet = AudioLevel(samples: [Int16](repeating: 1, count: 960))
        #expect(quiet.rfc6464Level == 90)
        #expect(AudioLevel(rmsDBov: -300, peakDBov: 5) == AudioLevel(rmsDBov: -127, peakDBov: 0))
    }

    @Test("interleaved stereo fixture: left −9 dBov, right −15 dBov")
    func stereoChannels() throws {
        let pcm = try MediaFixtures.readPCM("tone-660hz-stereo.pcm")
        let left = stride(from: 0, to: pcm.count, by: 2).map { pcm[$0] }
        let right = stride(from: 1, to: pcm.count, by: 2).map { pcm[$0] }
        #expect(abs(AudioLevel(samples: left).rmsDBov - -9.03) < 0.05)
        #expect(abs(AudioLevel(samples: right).rmsDBov - -15.05) < 0.05)
    }
}
