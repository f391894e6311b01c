import AirwaveProtocol
import Foundation
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import AirwaveServer

/// Graceful shutdown through the server's own API (the SIGTERM path of the binary is covered
/// end to end in e2e).
@Suite struct ShutdownTests {
    @Test func shutdownTellsEveryConnectionAndClosesWithGoingAway() async throws {
        let received = NIOLockedValueBox<[String]>([])
        let closeCode = NIOLockedValueBox<UInt16?>(nil)
        try await TestServer.with { test in
            let token = try test.token("host-shutdown", username: "Hana")
            let (live, liveContinuation) = AsyncStream.makeStream(of: Void.self)
            let client = Task {
                let close = try await WebSocketClient.connect(
                    url: test.url("/ws/stream/start/live/host-shutdown/?token=\(token)"), logger: Logger(label: "client")
                ) { inbound, _, _ in
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message, let type = try? JSONParser.parse(text)["type"]?.stringValue else { continue }
                        received.withLockedValue { $0.append(type) }
                        if type == "stream_link" { liveContinuation.yield() }
                    }
                }
                if case .unknown(let code) = close?.closeCode { closeCode.withLockedValue { $0 = code } }
                else if close?.closeCode == .goingAway { closeCode.withLockedValue { $0 = 1001 } }
            }
            var iterator = live.makeAsyncIterator()
            await iterator.next()
            await test.server.shutdown()
            try await client.value
        }
        #expect(received.withLockedValue { $0 } == ["stream_link", "server_shutdown"])
        #expect(closeCode.withLockedValue { $0 } == 1001)
    }
}
