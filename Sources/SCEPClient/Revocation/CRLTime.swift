import Foundation
import SwiftASN1

// RFC 5280 §4.1.2.5 / §5.1.2.4
//
// Time ::= CHOICE {
//      utcTime        UTCTime,
//      generalTime    GeneralizedTime }
//
// Dates through 2049 are UTCTime, later ones GeneralizedTime (§5.1.2.4).
struct CRLTime: DERParseable, DERSerializable, Hashable, Sendable {
    var date: Date

    init(_ date: Date) { self.date = date }

    static func isTime(_ identifier: ASN1Identifier) -> Bool {
        identifier == .utcTime || identifier == .generalizedTime
    }

    init(derEncoded node: ASN1Node) throws {
        switch node.identifier {
        case .utcTime:
            let time = try UTCTime(derEncoded: node)
            date = try Self.date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
        case .generalizedTime:
            let time = try GeneralizedTime(derEncoded: node)
            date = try Self.date(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
                .addingTimeInterval(time.fractionalSeconds)
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
    }

    func serialize(into coder: inout DER.Serializer) throws {
        let parts = Self.calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hour, minute, second) = (parts.hour!, parts.minute!, parts.second!)
        if (1950...2049).contains(year) {
            try coder.serialize(UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second))
        } else {
            try coder.serialize(GeneralizedTime(year: year, month: month, day: day, hours: hour, minutes: minute,
                                                seconds: second, fractionalSeconds: 0))
        }
    }

    /// DER times are whole seconds (fractions only in GeneralizedTime, rarely used).
    var wholeSeconds: CRLTime { CRLTime(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))) }

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
