import AirwaveTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import AirwaveServer

@Suite("WebRTC gateway settings")
struct WebRTCGatewayTests {
    @Test func configuredAddressesAreAnnouncedAsGivenAndMustBeIPs() throws {
        #expect(try WebRTCGateway.announcedAddresses(["203.0.113.7", "::1"], bindHost: "0.0.0.0") == ["203.0.113.7", "::1"])
        #expect(throws: ServerStartError.self) { try WebRTCGateway.announcedAddresses(["example.com"], bindHost: "0.0.0.0") }
    }

    @Test func aConcreteListenAddressIsTheCandidateAndTheWildcardAnnouncesInterfacesLoopbackLast() throws {
        #expect(try WebRTCGateway.announcedAddresses([], bindHost: "127.0.0.1") == ["127.0.0.1"])
        let all = try WebRTCGateway.announcedAddresses([], bindHost: "0.0.0.0")
        #expect(all.last == "127.0.0.1")
        #expect(all.dropLast().allSatisfy { !$0.hasPrefix("127.") })
    }

    @Test func aUDPPortInUseIsAStartErrorThatSaysSo() async throws {
        let taken = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(taken.localAddress?.port)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let folder = try TemporaryDirectory(prefix: "airwave-server")
        defer { folder.remove() }
        configuration.dataDirectory = folder.path
        configuration.auth.hs256Secret = TestServer.secret
        configuration.webRTC.port = port
        do {
            _ = try await AirwaveServer.make(configuration: configuration, logger: Logger(label: "test"))
            Issue.record("the server started on a UDP port in use")
        } catch {
            #expect(error.description.contains("UDP port \(port)"))
            #expect(error.description.contains("in use"))
        }
        try await taken.close()
    }
}
