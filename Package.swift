// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "airwave",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "airwave", targets: ["airwave"]),
        .executable(name: "airwave-core-bench", targets: ["airwave-core-bench"]),
        .executable(name: "airwave-client", targets: ["airwave-client"]),
        .executable(name: "airwave-bench", targets: ["airwave-bench"]),
        .executable(name: "airwave-mix-bench", targets: ["airwave-mix-bench"]),
        .executable(name: "airwave-fuzz", targets: ["airwave-fuzz"]),
        .executable(name: "airwave-echo", targets: ["airwave-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.0"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.30.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.0"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
    ],
    targets: [
        .target(
            name: "AirwaveProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "AirwaveCore",
            dependencies: ["AirwaveProtocol"]
        ),
        .systemLibrary(
            name: "COpus",
            path: "Sources/COpus",
            pkgConfig: "opus",
            providers: [.apt(["libopus-dev"])]
        ),
        .systemLibrary(
            name: "COgg",
            path: "Sources/COgg",
            pkgConfig: "ogg",
            providers: [.apt(["libogg-dev"])]
        ),
        .target(
            name: "AirwaveMedia",
            dependencies: ["COpus", "COgg"]
        ),
        .systemLibrary(
            name: "CSRTP",
            path: "Sources/CSRTP",
            pkgConfig: "libsrtp2",
            providers: [.apt(["libsrtp2-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "AirwaveWebRTC",
            dependencies: ["COpenSSL"]
        ),
        // sendmmsg straight to the UDP sockets, for the WebRTC fan-out (see DatagramBatch).
        .target(name: "CAirwaveUDP"),
        .target(
            name: "AirwaveWebRTCUDP",
            dependencies: [
                "AirwaveWebRTC", "CAirwaveUDP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "AirwaveWebRTCFuzzing",
            dependencies: ["AirwaveWebRTC", "AirwaveTestSupport"]
        ),
        // What the tests and the fuzzer share: the seeded generator and the temporary folder.
        // A library (not a test target) because `airwave-fuzz` needs the generator too.
        .target(name: "AirwaveTestSupport"),
        .target(
            name: "AirwaveStore",
            dependencies: [
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "AirwaveAuth",
            dependencies: [
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "AirwaveServer",
            dependencies: [
                "AirwaveProtocol", "AirwaveCore", "AirwaveStore", "AirwaveAuth", "AirwaveMedia",
                "AirwaveWebRTC", "AirwaveWebRTCUDP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "airwave",
            dependencies: [
                "AirwaveServer", "AirwaveProtocol", "AirwaveAuth",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "airwave-client",
            dependencies: [
                "AirwaveProtocol", "AirwaveMedia",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            path: "tools/Client"
        ),
        .executableTarget(
            name: "airwave-bench",
            dependencies: [
                "AirwaveProtocol", "AirwaveMedia",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                "AirwaveWHEPClient", "AirwaveWebRTC",
            ],
            path: "tools/LoadBench"
        ),
        .target(
            name: "AirwaveWHEPClient",
            dependencies: [
                "AirwaveWebRTC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/WebRTCBench"
        ),
        .executableTarget(
            name: "airwave-mix-bench",
            dependencies: ["AirwaveMedia"],
            path: "tools/MixBench"
        ),
        .executableTarget(
            name: "airwave-fuzz",
            dependencies: ["AirwaveWebRTCFuzzing", "AirwaveWebRTC"],
            path: "tools/Fuzz"
        ),
        .executableTarget(
            name: "airwave-echo",
            dependencies: ["AirwaveServer", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")],
            path: "tools/Echo"
        ),
        .executableTarget(
            name: "airwave-core-bench",
            dependencies: ["AirwaveCore", "AirwaveProtocol"],
            path: "tools/CoreBench"
        ),
        .testTarget(
            name: "AirwaveProtocolTests",
            dependencies: ["AirwaveProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "AirwaveCoreTests",
            dependencies: ["AirwaveCore", "AirwaveProtocol", "AirwaveTestSupport", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "AirwaveStoreTests", dependencies: ["AirwaveStore", "AirwaveTestSupport"]),
        .testTarget(name: "AirwaveMediaTests", dependencies: ["AirwaveMedia", "AirwaveCore", "AirwaveProtocol", "AirwaveTestSupport"]),
        .testTarget(name: "AirwaveAuthTests", dependencies: ["AirwaveAuth", "AirwaveTestSupport"]),
        // libsrtp2 (CSRTP): only the reference the OpenSSL SRTP code is compared with.
        .testTarget(name: "AirwaveWebRTCTests", dependencies: ["AirwaveWebRTC", "AirwaveWebRTCFuzzing", "AirwaveTestSupport", "CSRTP"]),
        .testTarget(
            name: "AirwaveWebRTCUDPTests",
            dependencies: [
                "AirwaveWebRTCUDP", "AirwaveWebRTC", "CAirwaveUDP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "AirwaveWHEPClientTests",
            dependencies: [
                "AirwaveWHEPClient", "AirwaveWebRTC", "AirwaveWebRTCUDP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "AirwaveServerTests",
            dependencies: [
                "AirwaveServer", "AirwaveTestSupport",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)
