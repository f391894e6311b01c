import COpenSSL

/// The few hash and random primitives the protocol layer needs, from OpenSSL's libcrypto.
enum Crypto {
    /// HMAC-SHA1 (STUN MESSAGE-INTEGRITY).
    static func hmacSHA1(key: [UInt8], data: ArraySlice<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { keyBuffer in
            data.withUnsafeBufferPointer { dataBuffer in
                _ = HMAC(
                    EVP_sha1(), keyBuffer.baseAddress, Int32(keyBuffer.count),
                    dataBuffer.baseAddress, dataBuffer.count, &digest, &length)
            }
        }
        return Array(digest[0..<Int(length)])
    }

    /// SHA-256 of `data`.
    static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = data.withUnsafeBufferPointer { buffer in
            SHA256(buffer.baseAddress, buffer.count, &digest)
        }
        return digest
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = RAND_bytes(&bytes, Int32(count))
        precondition(status == 1, "OpenSSL RAND_bytes failed")
        return bytes
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex without separators.
    var hexString: String {
        map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined()
    }
}
