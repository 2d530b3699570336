import Foundation
import SwiftASN1

// RFC 5280 §4.1.2.5 / §5.1.2.4
//
// Time ::= CHOICE {
//      utcTime        UTCTime,
//      generalTime    GeneralizedTime }
//
// Dates through 2049 are UTCTime, later ones GeneralizedTime (§5.1.2.4). A parsed time keeps
// the form it came in, so a CRL re-encodes to the bytes that were signed.
struct CRLTime: DERParseable, DERSerializable, Hashable, Sendable {
    private enum Form: Hashable, Sendable {
        case utc(UTCTime)
        case generalized(GeneralizedTime)
    }

    let date: Date
    private let form: Form

    /// The RFC's form for `date`, in whole seconds.
    init(_ date: Date) {
        let whole = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
        let parts = Self.calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: whole)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hour, minute, second) = (parts.hour!, parts.minute!, parts.second!)
        if (1950...2049).contains(year),
           let time = try? UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second) {
            form = .utc(time)
        } else {
            // Years 0...9999 are all GeneralizedTime can hold; a Date outside is a caller's bug.
            form = .generalized(try! GeneralizedTime(year: min(max(year, 0), 9999), month: month, day: day, hours: hour,
                                                     minutes: minute, seconds: second, fractionalSeconds: 0))
        }
        self.date = whole
    }

    static func isTime(_ identifier: ASN1Identifier) -> Bool {
        identifier == .utcTime || identifier == .generalizedTime
    }

    init(derEncoded node: ASN1Node) throws {
        switch node.identifier {
        case .utcTime:
            let time = try UTCTime(derEncoded: node)
            form = .utc(time)
            date = try Self.date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
        case .generalizedTime:
            let time = try GeneralizedTime(derEncoded: node)
            form = .generalized(time)
            date = try Self.date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
                .addingTimeInterval(time.fractionalSeconds)
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
    }

    func serialize(into coder: inout DER.Serializer) throws {
        switch form {
        case .utc(let time): try coder.serialize(time)
        case .generalized(let time): try coder.serialize(time)
        }
    }

    /// The same instant as the RFC's form would write it (whole seconds).
    var wholeSeconds: CRLTime { CRLTime(date) }

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    private static func date(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int) throws -> Date {
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let date = calendar.date(from: components) else {
            throw ASN1Error.invalidASN1Object(reason: "not a calendar date: \(year)-\(month)-\(day)")
        }
        return date
    }
}
