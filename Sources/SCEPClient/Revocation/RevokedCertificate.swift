import Foundation
import SwiftASN1
import X509

// RFC 5280 §5.1 (an element of TBSCertList.revokedCertificates)
//
// SEQUENCE  {
//      userCertificate         CertificateSerialNumber,
//      revocationDate          Time,
//      crlEntryExtensions      Extensions OPTIONAL }
//
// Entry extensions read here (§5.3): reasonCode 2.5.29.21 (ENUMERATED CRLReason) and
// invalidityDate 2.5.29.24 (GeneralizedTime).
struct RevokedCertificate: DERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var serialNumber: ArraySlice<UInt8>
    var revocationDate: CRLTime
    var extensions: [Certificate.Extension]

    init(serialNumber: ArraySlice<UInt8>, revocationDate: CRLTime, extensions: [Certificate.Extension] = []) {
        self.serialNumber = serialNumber
        self.revocationDate = revocationDate
        self.extensions = extensions
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(node, identifier: identifier) { nodes in
            let serial = try ArraySlice<UInt8>(derEncoded: &nodes)
            guard let timeNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "revoked entry without revocationDate") }
            let date = try CRLTime(derEncoded: timeNode)
            var extensions: [Certificate.Extension] = []
            if let extensionsNode = nodes.next() {
                extensions = try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: extensionsNode)
            }
            return RevokedCertificate(serialNumber: serial, revocationDate: date, extensions: extensions)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(serialNumber)
            try coder.serialize(revocationDate)
            if !extensions.isEmpty { try coder.serializeSequenceOf(extensions) }
        }
    }

    static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]
    static let invalidityDateOID: ASN1ObjectIdentifier = [2, 5, 29, 24]

    /// The reasonCode entry extension, nil when absent.
    func reason() throws -> CRLReason? {
        guard let value = extensions.first(where: { $0.oid == Self.reasonCodeOID })?.value else { return nil }
        let code = try Int(derEncoded: try DER.parse(value), withIdentifier: .enumerated)
        guard let reason = CRLReason(rawValue: code) else {
            throw ASN1Error.invalidASN1Object(reason: "unknown CRL reason code \(code)")
        }
        return reason
    }

    /// The invalidityDate entry extension: when the key is known or suspected to have
    /// been compromised (may be earlier than the revocation date).
    func invalidityDate() throws -> Date? {
        guard let value = extensions.first(where: { $0.oid == Self.invalidityDateOID })?.value else { return nil }
        let node = try DER.parse(value)
        guard node.identifier == .generalizedTime else { throw ASN1Error.unexpectedFieldType(node.identifier) }
        return try CRLTime(derEncoded: node).date
    }

    static func reasonExtension(_ reason: CRLReason) throws -> Certificate.Extension {
        var coder = DER.Serializer()
        try reason.rawValue.serialize(into: &coder, withIdentifier: .enumerated)
        return Certificate.Extension(oid: reasonCodeOID, critical: false, value: coder.serializedBytes[...])
    }

    static func invalidityDateExtension(_ date: Date) throws -> Certificate.Extension {
        let parts = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        let time = try GeneralizedTime(year: parts.year!, month: parts.month!, day: parts.day!, hours: parts.hour!,
                                       minutes: parts.minute!, seconds: parts.second!, fractionalSeconds: 0)
        return Certificate.Extension(oid: invalidityDateOID, critical: false, value: DERBytes.of(time)[...])
    }
}

/// RFC 5280 §5.3.1 CRLReason ::= ENUMERATED (7 is not used).
public enum CRLReason: Int, Sendable, CaseIterable {
    case unspecified = 0
    case keyCompromise = 1
    case cACompromise = 2
    case affiliationChanged = 3
    case superseded = 4
    case cessationOfOperation = 5
    case certificateHold = 6
    case removeFromCRL = 8
    case privilegeWithdrawn = 9
    case aACompromise = 10

    /// The RFC's spelling, as shown in logs and `status`.
    public var name: String { "\(self)" }
}

enum DERBytes {
    static func of<T: DERSerializable>(_ value: T) -> [UInt8] {
        var coder = DER.Serializer()
        try? coder.serialize(value)
        return coder.serializedBytes
    }
}
