import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore

/// One key a token may be verified with, bound to exactly one JWS algorithm.
struct VerificationKey: Sendable {
    /// The JWS `alg` this key verifies (e.g. "RS256"); tokens naming another `alg` never reach it.
    let algorithm: String
    /// The key id (`kid`) from a JWKS, if any.
    let kid: String?
    /// jwt-kit's verifier for this key.
    let verifier: any JWTAlgorithm
}

/// Builds ``VerificationKey`` values from configuration; every failure is an ``AuthConfigurationError``.
enum KeyLoader {
    /// Shortest accepted HS256 secret, in bytes (the SHA-256 output size; jwt-kit asserts on less).
    static let minimumSecretBytes = 32
    /// Largest JWKS document accepted, in bytes.
    static let maximumJWKSBytes = 1 << 20
    /// Timeout for fetching a JWKS URL.
    static let jwksFetchTimeout: Duration = .seconds(10)

    // MARK: HS256

    static func hmac(secret: String) async throws(AuthConfigurationError) -> VerificationKey {
        let length = secret.utf8.count
        guard length >= minimumSecretBytes else {
            throw AuthConfigurationError(
                "The HS256 secret is \(length) bytes long but must be at least \(minimumSecretBytes) bytes (256 bits); generate one with `openssl rand -base64 48`."
            )
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await key(from: keys, algorithm: "HS256", kid: nil, what: "the HS256 secret")
    }

    // MARK: PEM

    static func pem(path: String) async throws(AuthConfigurationError) -> VerificationKey {
        let data = try readFile(path, what: "public key file")
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains("-----BEGIN ") else {
            throw AuthConfigurationError("The public key file \(path) is not PEM-encoded (no \"-----BEGIN\" line).")
        }
        if text.contains("PRIVATE KEY-----") {
            throw AuthConfigurationError(
                "The public key file \(path) holds a private key; configure the matching public key instead."
            )
        }
        let isCertificate = text.contains("-----BEGIN CERTIFICATE-----")
        let keys = JWTKeyCollection()
        let algorithm: String
        if let rsa = try? (isCertificate ? Insecure.RSA.PublicKey(certificatePEM: text) : Insecure.RSA.PublicKey(pem: text)) {
            await keys.add(rsa: rsa, digestAlgorithm: .sha256)
            algorithm = "RS256"
        } else if let ec = try? (isCertificate ? ES256PublicKey(certificate: text) : ES256PublicKey(pem: text)) {
            await keys.add(ecdsa: ec)
            algorithm = "ES256"
        } else if let ec = try? (isCertificate ? ES384PublicKey(certificate: text) : ES384PublicKey(pem: text)) {
            await keys.add(ecdsa: ec)
            algorithm = "ES384"
        } else if let ec = try? (isCertificate ? ES512PublicKey(certificate: text) : ES512PublicKey(pem: text)) {
            await keys.add(ecdsa: ec)
            algorithm = "ES512"
        } else {
            throw AuthConfigurationError(
                "The public key file \(path) does not hold a usable RSA (at least 2048 bits) or EC P-256/P-384/P-521 public key or certificate."
            )
        }
        return try await key(from: keys, algorithm: algorithm, kid: nil, what: "the public key file \(path)")
    }

    // MARK: JWKS

    /// True when `source` names an http(s) URL rather than a file.
    static func isURL(_ source: String) -> Bool {
        let lower = source.lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    /// Reads a JWKS file; it must hold at least one usable key.
    static func jwksFile(path: String, logger: Logger) async throws(AuthConfigurationError) -> [VerificationKey] {
        let data = try readFile(path, what: "JWKS file")
        return try await jwks(from: data, origin: "The JWKS file \(path)", logger: logger)
    }

    /// Fetches a JWKS URL; it must answer 200 with at least one usable key.
    static func jwksURL(
        _ url: String, client: HTTPClient, logger: Logger
    ) async throws(AuthConfigurationError) -> [VerificationKey] {
        let response: (status: UInt, body: Data)
        do {
            response = try await HTTPGet.fetch(
                url, client: client, timeout: jwksFetchTimeout, maximumBytes: maximumJWKSBytes, logger: logger)
        } catch {
            throw AuthConfigurationError("The JWKS URL \(url) could not be fetched: \(error).")
        }
        guard response.status == 200 else {
            throw AuthConfigurationError("The JWKS URL \(url) answered HTTP \(response.status) instead of 200.")
        }
        return try await jwks(from: response.body, origin: "The JWKS at \(url)", logger: logger)
    }

    /// Parses a JWKS document. Keys that are not signature keys, of an unsupported type, or
    /// invalid are skipped (and logged); at least one usable key must remain.
    static func jwks(
        from data: Data, origin: String, logger: Logger
    ) async throws(AuthConfigurationError) -> [VerificationKey] {
        guard let document = JSONValue.object(from: data), case .array(let entries)? = document["keys"] else {
            throw AuthConfigurationError("\(origin) is not a JSON Web Key Set (a JSON object with a \"keys\" array).")
        }
        var result: [VerificationKey] = []
        for (index, entry) in entries.enumerated() {
            guard case .object(let jwk) = entry else { continue }
            do {
                if let key = try await key(fromJWK: jwk) {
                    result.append(key)
                }
            } catch {
                logger.warning(
                    "Skipping an unusable JWKS key",
                    metadata: ["index": "\(index)", "kid": "\(jwk["kid"]?.stringValue ?? "-")", "error": "\(error)"])
            }
        }
        guard !result.isEmpty else {
            throw AuthConfigurationError("\(origin) holds no usable RSA or EC signature key.")
        }
        return result
    }

    private struct UnusableKey: Error, CustomStringConvertible {
        var description: String
    }

    /// One JWK as a verification key; `nil` for keys that are not meant for signatures.
    private static func key(fromJWK jwk: [String: JSONValue]) async throws -> VerificationKey? {
        if let use = jwk["use"]?.stringValue, use != "sig" { return nil }
        let kid = jwk["kid"]?.stringValue
        let declared = jwk["alg"]?.stringValue
        let keys = JWTKeyCollection()
        let algorithm: String
        switch jwk["kty"]?.stringValue {
        case "RSA":
            guard let n = jwk["n"]?.stringValue, let e = jwk["e"]?.stringValue else {
                throw UnusableKey(description: "RSA key without n or e")
            }
            let rsa = try Insecure.RSA.PublicKey(modulus: n, exponent: e)
            algorithm = declared ?? "RS256"
            switch algorithm {
            case "RS256": await keys.add(rsa: rsa, digestAlgorithm: .sha256)
            case "RS384": await keys.add(rsa: rsa, digestAlgorithm: .sha384)
            case "RS512": await keys.add(rsa: rsa, digestAlgorithm: .sha512)
            case "PS256": await keys.add(pss: rsa, digestAlgorithm: .sha256)
            case "PS384": await keys.add(pss: rsa, digestAlgorithm: .sha384)
            case "PS512": await keys.add(pss: rsa, digestAlgorithm: .sha512)
            default: throw UnusableKey(description: "unsupported RSA alg \(algorithm)")
            }
        case "EC":
            guard let x = jwk["x"]?.stringValue, let y = jwk["y"]?.stringValue else {
                throw UnusableKey(description: "EC key without x or y")
            }
            switch jwk["crv"]?.stringValue {
            case "P-256":
                algorithm = "ES256"
                await keys.add(ecdsa: try ES256PublicKey(parameters: (x, y)))
            case "P-384":
                algorithm = "ES384"
                await keys.add(ecdsa: try ES384PublicKey(parameters: (x, y)))
            case "P-521":
                algorithm = "ES512"
                await keys.add(ecdsa: try ES512PublicKey(parameters: (x, y)))
            default:
                throw UnusableKey(description: "unsupported EC curve \(jwk["crv"]?.stringValue ?? "(none)")")
            }
            if let declared, declared != algorithm {
                throw UnusableKey(description: "alg \(declared) does not match the curve")
            }
        default:
            throw UnusableKey(description: "unsupported key type \(jwk["kty"]?.stringValue ?? "(none)")")
        }
        return try await key(from: keys, algorithm: algorithm, kid: kid, what: "a JWKS key")
    }

    // MARK: Helpers

    private static func key(
        from keys: JWTKeyCollection, algorithm: String, kid: String?, what: String
    ) async throws(AuthConfigurationError) -> VerificationKey {
        let verifier: any JWTAlgorithm
        do {
            verifier = try await keys.getKey()
        } catch {
            throw AuthConfigurationError("Could not use \(what): \(error).")
        }
        guard verifier.name == algorithm else {
            throw AuthConfigurationError("Could not use \(what): expected \(algorithm), got \(verifier.name).")
        }
        return VerificationKey(algorithm: algorithm, kid: kid, verifier: verifier)
    }

    static func readFile(_ path: String, what: String) throws(AuthConfigurationError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AuthConfigurationError("Cannot read the \(what) \(path): \(error.localizedDescription)")
        }
    }
}

/// A small GET helper over AsyncHTTPClient.
enum HTTPGet {
    struct InvalidURL: Error, CustomStringConvertible {
        var description: String { "not a valid http(s) URL" }
    }

    /// GETs `url` and collects at most `maximumBytes` of body, all within `timeout`.
    static func fetch(
        _ url: String, client: HTTPClient, timeout: Duration, maximumBytes: Int, logger: Logger
    ) async throws -> (status: UInt, body: Data) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https", parsed.host != nil
        else { throw InvalidURL() }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        let nanoseconds = Int64(min(timeout.secondsDouble, 86_400) * 1e9)
        let deadline = NIODeadline.now() + .nanoseconds(nanoseconds)
        let response = try await client.execute(request, deadline: deadline, logger: logger)
        let body = try await response.body.collect(upTo: maximumBytes)
        return (response.status.code, Data(body.readableBytesView))
    }
}
