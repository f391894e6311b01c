import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import AirwaveAuth

/// A fixed clock for every test: 2023-11-14T22:13:20Z.
let testNow = Date(timeIntervalSince1970: 1_700_000_000)
let testSecret = "airwave-test-secret-0123456789-abcdefghij"
let quietLogger = Logger(label: "airwave.auth.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// Standard claims valid at ``testNow`` plus `extra` (a value of `NSNull()` removes a claim).
func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
    var result: [String: Any] = [
        "user_id": "alice",
        "iat": Int(testNow.timeIntervalSince1970),
        "exp": Int(testNow.timeIntervalSince1970) + 3600,
    ]
    for (key, value) in extra {
        result[key] = value is NSNull ? nil : value
    }
    return result
}

/// Builds a compact JWS from raw header and claims, signing with `sign`.
func makeToken(header: [String: Any], claims: [String: Any], sign: (Data) throws -> Data) throws -> String {
    let options: JSONSerialization.WritingOptions = [.sortedKeys]
    let h = Base64URL.encode(try JSONSerialization.data(withJSONObject: header, options: options))
    let p = Base64URL.encode(try JSONSerialization.data(withJSONObject: claims, options: options))
    let signature = try sign(Data("\(h).\(p)".utf8))
    return "\(h).\(p).\(Base64URL.encode(signature))"
}

/// An HS256 token with arbitrary claims.
func hs256Token(_ claims: [String: Any], secret: String = testSecret, header: [String: Any] = [:]) throws -> String {
    try TokenMinter.sign(
        header: header.merging(["alg": "HS256", "typ": "JWT"]) { current, _ in current },
        claims: claims, secret: Data(secret.utf8))
}

/// An HS256 token whose payload is exactly `json` (to control how numbers are spelled).
func rawHS256(_ json: String, secret: String = testSecret) -> String {
    let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
    let input = "\(header).\(Base64URL.encode(Data(json.utf8)))"
    let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
    return "\(input).\(Base64URL.encode(Data(mac)))"
}

/// A private key able to sign test tokens, with its public forms.
struct TestKeyPair: Sendable {
    let algorithm: String
    let signer: any JWTAlgorithm
    let publicPEM: String
    let jwk: [String: String]

    func token(_ claims: [String: Any], kid: String? = nil, alg: String? = nil) throws -> String {
        var header: [String: Any] = ["alg": alg ?? algorithm, "typ": "JWT"]
        if let kid { header["kid"] = kid }
        return try makeToken(header: header, claims: claims) { Data(try signer.sign($0)) }
    }

    func jwk(kid: String?, includeAlg: Bool = true) -> [String: String] {
        var result = jwk
        if let kid { result["kid"] = kid }
        if includeAlg { result["alg"] = algorithm }
        result["use"] = "sig"
        return result
    }

    static func rsa() async throws -> TestKeyPair {
        let key = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let keys = JWTKeyCollection()
        await keys.add(rsa: key, digestAlgorithm: .sha256)
        let primitives = try key.publicKey.getKeyPrimitives()
        return TestKeyPair(
            algorithm: "RS256", signer: try await keys.getKey(), publicPEM: key.publicKey.pemRepresentation,
            jwk: ["kty": "RSA", "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent)])
    }

    static func es256() async throws -> TestKeyPair {
        let key = ES256PrivateKey()
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key)
        let parameters = try #require(key.publicKey.parameters)
        return TestKeyPair(
            algorithm: "ES256", signer: try await keys.getKey(), publicPEM: key.publicKey.pemRepresentation,
            jwk: ["kty": "EC", "crv": "P-256", "x": parameters.x, "y": parameters.y])
    }
}

/// RSA key generation is slow-ish, so the tests share two generated pairs.
actor KeyPool {
    static let shared = KeyPool()
    private var rsaPairs: [TestKeyPair] = []

    func rsa(_ index: Int) async throws -> TestKeyPair {
        while rsaPairs.count <= index {
            rsaPairs.append(try await TestKeyPair.rsa())
        }
        return rsaPairs[index]
    }
}

func jwksJSON(_ keys: [[String: String]]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: ["keys": keys], options: [.sortedKeys]), as: UTF8.self)
}

func verifier(_ configuration: AuthConfiguration) async throws -> TokenVerifier {
    try await TokenVerifier.make(configuration: configuration, httpClient: HTTPClient.shared, logger: quietLogger)
}

/// The rejection `verify` throws, or `nil` when it accepts the token.
func rejection(_ verifier: TokenVerifier, _ token: String, now: Date = testNow) async -> TokenRejection? {
    do {
        _ = try await verifier.verify(token, now: now)
        return nil
    } catch {
        return error
    }
}

/// The configuration error `make` throws, if any.
func configurationError(_ configuration: AuthConfiguration) async -> AuthConfigurationError? {
    do {
        _ = try await verifier(configuration)
        return nil
    } catch let error as AuthConfigurationError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

/// A thread-safe counter for server routes.
final class RequestCounter: Sendable {
    private let value = NIOLockedValueBox(0)

    /// Returns the number of earlier calls.
    func next() -> Int {
        value.withLockedValue { count in
            defer { count += 1 }
            return count
        }
    }
}

// MARK: - A tiny HTTP server on 127.0.0.1:0

/// Serves canned answers; a route answering `nil` never responds (to exercise client timeouts).
final class TestHTTPServer: Sendable {
    struct Answer: Sendable {
        var status: HTTPResponseStatus = .ok
        var body: String
    }

    typealias Route = @Sendable (_ path: String) -> Answer?

    private let channel: any Channel
    private let log: NIOLockedValueBox<[String]>
    let port: Int

    private init(channel: any Channel, log: NIOLockedValueBox<[String]>) {
        self.channel = channel
        self.log = log
        self.port = channel.localAddress?.port ?? 0
    }

    static func start(_ route: @escaping Route) async throws -> TestHTTPServer {
        let log = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(route: route, log: log))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestHTTPServer(channel: channel, log: log)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Every request path received, in order.
    var requests: [String] { log.withLockedValue { $0 } }

    func count(_ path: String) -> Int { requests.filter { $0 == path }.count }

    func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let route: Route
        let log: NIOLockedValueBox<[String]>
        var path = ""

        init(route: @escaping Route, log: NIOLockedValueBox<[String]>) {
            self.route = route
            self.log = log
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
            case .body:
                break
            case .end:
                log.withLockedValue { $0.append(path) }
                guard let answer = route(path) else { return }
                let body = ByteBuffer(string: answer.body)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                // "Connection: close" makes the client close the connection after the answer.
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
