import Testing

@testable import AirwaveWebRTC

@Suite struct SDPTests {
    let fingerprint = CertificateFingerprint(
        algorithm: "sha-256",
        value: "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF")

    func parameters(_ role: WebRTCPeerRole, video: Bool = true) -> AnswerParameters {
        AnswerParameters(
            role: role, iceUfrag: "srvU", icePassword: "serverpassword0123456789", fingerprint: fingerprint,
            candidates: [TransportAddress(host: "203.0.113.5", port: 40000)!, TransportAddress(host: "2001:db8::5", port: 40000)!],
            sendsVideo: video, audioSSRC: 1111, videoSSRC: 2222, cname: "airwave", sessionID: 42)
    }

    /// The offers, the role each one is for, and what the answer must negotiate.
    static let cases: [(file: String, role: WebRTCPeerRole, opus: UInt8, vp8: UInt8?, remoteUfrag: String)] = [
        ("aiortc-whep-offer.sdp", .listener, 96, 97, "UUoE"),
        ("aiortc-whip-offer.sdp", .speaker, 96, nil, "Rg95"),
        ("chromium-whep-offer.sdp", .listener, 111, 96, "SyiO"),
        ("chromium-whip-offer.sdp", .speaker, 111, nil, "XpBd"),
    ]

    @Test(arguments: cases.indices)
    func capturedOffersAreParsedAndAnswered(index: Int) throws {
        let expected = Self.cases[index]
        let offer = try SessionDescription.parse(try WebRTCFixtures.offer(expected.file))
        let negotiated = try offer.answer(parameters(expected.role))
        #expect(negotiated.remoteUfrag == expected.remoteUfrag)
        #expect(negotiated.remoteFingerprint.algorithm == "sha-256")
        #expect(negotiated.dtlsRole == .server)  // the offers say actpass
        #expect(negotiated.audio?.payloadType == expected.opus)
        #expect(negotiated.video?.payloadType == expected.vp8)

        let answer = try SessionDescription.parse(negotiated.answer)
        #expect(answer.has("ice-lite"))
        #expect(answer.media.count == offer.media.count)
        #expect(answer.bundleMids == [negotiated.audio?.mid, negotiated.video?.mid].compactMap { $0 })
        let audio = try #require(answer.media.first { $0.kind == "audio" })
        #expect(audio.port == 40000)
        #expect(audio.formats == [String(expected.opus)])
        #expect(audio.rtpMaps == [RTPMap(payloadType: expected.opus, encoding: "opus", clockRate: 48000, channels: 2)])
        #expect(audio.direction == (expected.role == .listener ? .sendonly : .recvonly))
        #expect(audio.value(of: "ice-ufrag") == "srvU")
        #expect(audio.value(of: "ice-pwd") == "serverpassword0123456789")
        #expect(audio.value(of: "fingerprint") == fingerprint.attributeValue)
        #expect(audio.value(of: "setup") == "passive")
        #expect(audio.has("rtcp-mux"))
        #expect(audio.mid == offer.media.first { $0.kind == "audio" }?.mid)
        let candidates = audio.values(of: "candidate")
        #expect(candidates.count == 2)
        #expect(candidates.first?.hasSuffix("203.0.113.5 40000 typ host") == true)
        #expect(candidates.last?.hasSuffix("2001:db8::5 40000 typ host") == true)
        if expected.role == .listener {
            #expect(audio.ssrcs == [1111])
            let video = try #require(answer.media.first { $0.kind == "video" })
            #expect(video.formats == [String(try #require(expected.vp8))])
            #expect(video.direction == .sendonly)
            #expect(video.ssrcs == [2222])
            #expect(video.feedback(try #require(expected.vp8)).contains("nack pli"))
        } else {
            #expect(audio.ssrcs.isEmpty)
            #expect(negotiated.audio?.remoteSSRCs.isEmpty == false)
        }
    }

    @Test func aListenerWithoutVP8ScreenGetsTheVideoSectionRejected() throws {
        let offer = try SessionDescription.parse(try WebRTCFixtures.offer("chromium-whep-offer.sdp"))
        let negotiated = try offer.answer(parameters(.listener, video: false))
        #expect(negotiated.video == nil)
        let answer = try SessionDescription.parse(negotiated.answer)
        let video = try #require(answer.media.first { $0.kind == "video" })
        #expect(video.port == 0)
        #expect(video.direction == .inactive)
        #expect(answer.bundleMids == ["0"])
    }

    @Test func anOfferInTheWrongDirectionHasNoUsableAudio() throws {
        let whip = try SessionDescription.parse(try WebRTCFixtures.offer("chromium-whip-offer.sdp"))
        #expect(throws: AnswerError.noUsableAudio) { try whip.answer(parameters(.listener)) }
        let whep = try SessionDescription.parse(try WebRTCFixtures.offer("aiortc-whep-offer.sdp"))
        #expect(throws: AnswerError.noUsableAudio) { try whep.answer(parameters(.speaker)) }
    }

    @Test func theDTLSRoleFollowsTheOfferedSetup() throws {
        let text = try WebRTCFixtures.offer("aiortc-whip-offer.sdp")
        let passive = try SessionDescription.parse(text.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:passive"))
        #expect(try passive.answer(parameters(.speaker)).dtlsRole == .client)
        let active = try SessionDescription.parse(text.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:active"))
        let negotiated = try active.answer(parameters(.speaker))
        #expect(negotiated.dtlsRole == .server)
        #expect(negotiated.answer.contains("a=setup:passive"))
        let holdconn = try SessionDescription.parse(text.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:holdconn"))
        #expect(throws: AnswerError.unsupportedSetup("holdconn")) { try holdconn.answer(parameters(.speaker)) }
    }

    @Test func missingCredentialsFingerprintOrRTCPMuxAreRefused() throws {
        let text = try WebRTCFixtures.offer("aiortc-whip-offer.sdp")
        func without(_ prefix: String) throws -> SessionDescription {
            let lines = text.split(separator: "\r\n").filter { !$0.hasPrefix(prefix) }
            return try SessionDescription.parse(lines.joined(separator: "\r\n"))
        }
        #expect(throws: AnswerError.missingICECredentials) { try without("a=ice-pwd").answer(parameters(.speaker)) }
        #expect(throws: AnswerError.missingFingerprint) { try without("a=fingerprint").answer(parameters(.speaker)) }
        #expect(throws: AnswerError.rtcpMuxRequired) { try without("a=rtcp-mux").answer(parameters(.speaker)) }
    }

    /// Issue 13 finding 8: an md5 fingerprint made a session that could not be built (503); it
    /// is a bad offer. A usable hash next to it is taken; a digest of the wrong length is not usable.
    @Test func aFingerprintDTLSCannotCheckIsABadOffer() throws {
        let text = try WebRTCFixtures.offer("aiortc-whip-offer.sdp")
        func with(_ fingerprints: [String]) throws -> SessionDescription {
            let lines = text.split(separator: "\r\n").flatMap { line -> [String] in
                line.hasPrefix("a=fingerprint:") ? fingerprints.map { "a=fingerprint:" + $0 } : [String(line)]
            }
            return try SessionDescription.parse(lines.joined(separator: "\r\n"))
        }
        let md5 = "md5 " + Array(repeating: "AB", count: 16).joined(separator: ":")
        let sha1 = "sha-1 " + Array(repeating: "CD", count: 20).joined(separator: ":")
        let shortSHA256 = "sha-256 " + Array(repeating: "EF", count: 16).joined(separator: ":")
        #expect(throws: AnswerError.unsupportedFingerprint("md5")) { try with([md5]).answer(parameters(.speaker)) }
        #expect(throws: AnswerError.unsupportedFingerprint("sha-256")) { try with([shortSHA256]).answer(parameters(.speaker)) }
        #expect(try with([md5, sha1]).answer(parameters(.speaker)).remoteFingerprint
            == CertificateFingerprint(algorithm: "sha-1", value: Array(repeating: "CD", count: 20).joined(separator: ":")))
    }

    @Test(arguments: [
        ("", SDPError.missingVersion),
        ("o=- 1 1 IN IP4 0.0.0.0\r\n", .missingVersion),
        ("v=1\r\n", .missingVersion),
        ("v=0\r\nnot a line\r\n", .malformedLine(2)),
        ("v=0\r\nA=x\r\n", .malformedLine(2)),
        ("v=0\r\nm=audio\r\n", .malformedMediaLine(2)),
        ("v=0\r\nm=audio 99999 UDP/TLS/RTP/SAVPF 111\r\n", .malformedMediaLine(2)),
        ("v=0\r\n" + String(repeating: "m=audio 9 RTP/AVP 0\r\n", count: 33), .tooManyMediaSections),
        ("v=0\r\n" + String(repeating: "a=x\r\n", count: 14000), .tooLarge),
    ])
    func malformedSDPIsRejected(text: String, error: SDPError) {
        #expect(throws: error) { try SessionDescription.parse(text) }
    }

    @Test func attributesAndRTPMapsParse() throws {
        let sdp = try SessionDescription.parse("v=0\nm=audio 9/2 UDP/TLS/RTP/SAVPF 111 0\na=rtpmap:111 opus/48000/2\na=rtpmap:bad\na=recvonly\n")
        let media = try #require(sdp.media.first)
        #expect(media.port == 9)
        #expect(media.formats == ["111", "0"])
        #expect(media.rtpMaps == [RTPMap(payloadType: 111, encoding: "opus", clockRate: 48000, channels: 2)])
        #expect(media.direction == .recvonly)
        #expect(CertificateFingerprint(attributeValue: "sha-256 AB:CD") == CertificateFingerprint(algorithm: "SHA-256", value: "ab:cd"))
        #expect(CertificateFingerprint(attributeValue: "sha-256 ABC:D") == nil)
    }
}
