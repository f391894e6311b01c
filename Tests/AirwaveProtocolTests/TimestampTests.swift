import AirwaveProtocol
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test("iso8601", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1000, "1970-01-01T00:00:01.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_456_704_000_000, "2016-02-29T00:00:00.000Z"),
        (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_000, "1969-12-31T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
    ])
    func iso8601(_ ms: Int64, _ text: String) {
        #expect(Timestamp(milliseconds: ms).iso8601 == text)
        #expect(Timestamp(milliseconds: ms).description == text)
    }

    @Test func fourYearsOfDaysAreDistinctAndOrdered() {
        var previous = ""
        for day in 0..<(366 * 4) {
            let text = Timestamp(milliseconds: Int64(day) * 86_400_000 + 946_684_800_000).iso8601  // from 2000-01-01
            #expect(text > previous)
            #expect(text.hasSuffix("T00:00:00.000Z"))
            previous = text
        }
        #expect(previous == "2004-01-03T00:00:00.000Z")  // 2000–2003 hold 1,461 days
    }

    @Test func arithmetic() {
        let t = Timestamp(milliseconds: 1000)
        #expect(t + .seconds(30) == Timestamp(milliseconds: 31_000))
        #expect(t + .milliseconds(1) == Timestamp(milliseconds: 1001))
        #expect(t + .milliseconds(-500) == Timestamp(milliseconds: 500))
        #expect(Timestamp(milliseconds: 31_000) - t == .seconds(30))
        #expect(t < Timestamp(milliseconds: 1001))
        #expect(!(t < t))
        #expect([Timestamp(milliseconds: 3), Timestamp(milliseconds: 1)].min() == Timestamp(milliseconds: 1))
    }

    @Test func durationMilliseconds() {
        #expect(Duration.seconds(30).milliseconds == 30_000)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.microseconds(1999).milliseconds == 1)
        #expect(Duration.zero.milliseconds == 0)
    }
}
