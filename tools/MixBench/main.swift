// airwave-mix-bench: CPU cost of the event mix (AudioMixer) per 20 ms tick, for 1, 4 and 10
// speakers. Each speaker streams the speech fixture (real 20 ms Opus packets, offset so that
// speakers differ); every tick decodes each speaker, mixes, soft-clips and encodes the wanted
// outputs. Two plans per speaker count: the full mix only (listeners, recording) and the full
// mix plus one mix-minus per speaker (every speaker listens to the mix: the worst case).
//
// A second table measures the level meter alone (decode only) for the same speaker counts.
//
// Usage: airwave-mix-bench [--ticks N] [--speakers 1,4,10] [--fixtures DIR]
// Build it in release mode for meaningful numbers: swift build -c release --product airwave-mix-bench

import AirwaveMedia
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var ticks = 3_000  // 60 s of audio
    var speakerCounts = [1, 4, 10]
    var fixtures: String?

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--ticks": ticks = iterator.next().flatMap(Int.init) ?? ticks
            case "--speakers": speakerCounts = iterator.next()?.split(separator: ",").compactMap { Int($0) } ?? speakerCounts
            case "--fixtures": fixtures = iterator.next()
            default:
                FileHandle.standardError.write(Data("usage: airwave-mix-bench [--ticks N] [--speakers 1,4,10] [--fixtures DIR]\n".utf8))
                exit(2)
            }
        }
    }
}

/// CPU time of this process (user + system), in microseconds.
func cpuMicroseconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) * 1e6 + Double(time.tv_nsec) / 1e3
}

func fixturesDirectory(_ given: String?) -> String {
    if let given { return given }
    var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while folder.path != "/" {
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
            return folder.appendingPathComponent("Fixtures/media").path
        }
        folder.deleteLastPathComponent()
    }
    return "Fixtures/media"
}

let options = Options(arguments: CommandLine.arguments)
let path = fixturesDirectory(options.fixtures) + "/speech.opus-packets"
guard let data = FileManager.default.contents(atPath: path), let speech = try? MediaRecordFile.readPackets(Array(data)) else {
    FileHandle.standardError.write(Data("airwave-mix-bench: cannot read \(path)\n".utf8))
    exit(2)
}

print("| speakers | outputs encoded per tick | CPU µs per 20 ms tick | share of one core |")
print("|---:|---|---:|---:|")
for speakers in options.speakerCounts {
    for withMinus in [false, true] {
        let mixer = AudioMixer()
        var outputs: Set<AudioMixer.Output> = [.full]
        if withMinus { for source in 1...speakers { outputs.insert(.minus(UInt32(source))) } }
        mixer.setOutputs(outputs)
        // Warm-up: fill the jitter buffers and let libopus allocate.
        func step(_ tick: Int) {
            for source in 1...speakers {
                let index = (tick + source * 17) % speech.count
                mixer.push(source: UInt32(source), packet: speech[index], timestamp: UInt32(truncatingIfNeeded: tick * 960))
            }
            _ = mixer.tick()
        }
        for tick in 0..<50 { step(tick) }
        let start = cpuMicroseconds()
        for tick in 50..<(50 + options.ticks) { step(tick) }
        let perTick = (cpuMicroseconds() - start) / Double(options.ticks)
        let label = withMinus ? "full + \(speakers) mix-minus (\(speakers + 1))" : "full mix only (1)"
        print("| \(speakers) | \(label) | \(String(format: "%.0f", perTick)) | \(String(format: "%.1f %%", perTick / 200)) |")
    }
}

// The level meter (AirwaveMedia.LevelMeter): what an event without a mix spends for
// `active_speakers` when clients send no level — every speaker's packets decoded, no mix, no encode.
print("")
print("| speakers | level meter: CPU µs per 20 ms of audio | per packet | share of one core |")
print("|---:|---:|---:|---:|")
/// CPU µs per 20 ms of audio for `speakers` sources measured by one meter.
func levelMeterCost(speakers: Int, ticks: Int, speech: [[UInt8]]) -> Double {
    var meter = LevelMeter()
    var sink = 0
    for tick in 0..<ticks {
        for source in 1...speakers {
            let packet = speech[(tick + source * 17) % speech.count]
            let level = packet.withUnsafeBytes { meter.measure(source: UInt32(source), packet: $0) }
            sink &+= Int(level?.rfc6464Level ?? 0)
        }
    }
    return Double(sink)  // the caller prints it if negative (never): keeps the work observable
}

for speakers in options.speakerCounts {
    _ = levelMeterCost(speakers: speakers, ticks: 50, speech: speech)  // warm-up
    let start = cpuMicroseconds()
    let observed = levelMeterCost(speakers: speakers, ticks: options.ticks, speech: speech)
    let perTick = (cpuMicroseconds() - start) / Double(options.ticks)
    print("| \(speakers) | \(String(format: "%.0f", perTick)) | \(String(format: "%.1f", perTick / Double(speakers))) | \(String(format: "%.2f %%", perTick / 200)) |")
    if observed < 0 { print(observed) }
}
