// airwave-fuzz: runs the WebRTC parsers (STUN, RTP, RTCP, SDP) over deterministically mutated
// inputs for a bounded time or number of iterations, checking each result's round trip. A
// parser that crashes kills the process, a broken property exits 1 after the run (the first
// inputs that broke one are printed); the seed printed first reproduces the run.
//
//   airwave-fuzz [--seconds S | --iterations N] [--seed N] [--fixtures DIR] [stun rtp rtcp sdp]
import AirwaveWebRTCFuzzing
import Foundation

var seconds: Double? = 10
var iterations: Int?
var seed: UInt64 = 1
var fixtures = "Fixtures/webrtc"
var targets: [FuzzTarget] = []

var arguments = CommandLine.arguments.dropFirst()
@MainActor func value(after flag: String) -> String {
    guard let value = arguments.popFirst() else {
        FileHandle.standardError.write(Data("airwave-fuzz: \(flag) needs a value\n".utf8))
        exit(2)
    }
    return value
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--seconds": seconds = Double(value(after: argument)); iterations = nil
    case "--iterations": iterations = Int(value(after: argument)); seconds = nil
    case "--seed": seed = UInt64(value(after: argument)) ?? 1
    case "--fixtures": fixtures = value(after: argument)
    default:
        guard let target = FuzzTarget(rawValue: argument) else {
            FileHandle.standardError.write(Data("airwave-fuzz: unknown argument \(argument)\n".utf8))
            exit(2)
        }
        targets.append(target)
    }
}
if targets.isEmpty { targets = FuzzTarget.allCases }

let offers = ((try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? [])
    .filter { $0.hasSuffix(".sdp") }.sorted()
    .compactMap { try? String(contentsOfFile: fixtures + "/" + $0, encoding: .utf8) }
if targets.contains(.sdp) && offers.isEmpty {
    FileHandle.standardError.write(Data("airwave-fuzz: no .sdp seeds in \(fixtures)\n".utf8))
    exit(2)
}

print("airwave-fuzz: seed \(seed)")
var broken = 0
for target in targets {
    var run = FuzzRun(target: target, sdpOffers: offers, seed: seed)
    let start = Date()
    if let iterations {
        run.run(iterations: iterations)
    } else if let seconds {
        while Date().timeIntervalSince(start) < seconds { run.run(iterations: 1000) }
    }
    let elapsed = max(Date().timeIntervalSince(start), 1e-9)
    let rate = Double(run.iterations) / elapsed
    let verdict = run.failureCount == 0 ? "no crash, no broken property" : "\(run.failureCount) broken properties"
    print("\(target.rawValue): \(run.iterations) inputs in \(String(format: "%.1f", elapsed)) s, \(Int(rate)) inputs/s, \(verdict)")
    for failure in run.failures { print("  \(failure)") }
    broken += run.failureCount
}
if broken > 0 { exit(1) }
