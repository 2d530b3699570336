/// SCEP messageType values (RFC 8894 §3.2.1.2), carried as PrintableString decimals.
public enum MessageType: String, Sendable, Codable, CaseIterable {
    case certRep = "3"
    case renewalReq = "17"
    case pkcsReq = "19"
    case certPoll = "20"
    case getCert = "21"
    case getCRL = "22"

    public var name: String {
        switch self {
        case .certRep: return "CertRep"
        case .renewalReq: return "RenewalReq"
        case .pkcsReq: return "PKCSReq"
        case .certPoll: return "CertPoll"
        case .getCert: return "GetCert"
        case .getCRL: return "GetCRL"
        }
    }
}

/// pkiStatus values (RFC 8894 §3.2.1.3).
public enum PKIStatus: String, Sendable, CaseIterable {
    case success = "0"
    case failure = "2"
    case pending = "3"
}

/// failInfo values (RFC 8894 §3.2.1.4), with what each means for the person reading the log.
public enum FailInfo: String, Sendable, CaseIterable {
    case badAlg = "0"
    case badMessageCheck = "1"
    case badRequest = "2"
    case badTime = "3"
    case badCertID = "4"

    public var name: String {
        switch self {
        case .badAlg: return "badAlg"
        case .badMessageCheck: return "badMessageCheck"
        case .badRequest: return "badRequest"
        case .badTime: return "badTime"
        case .badCertID: return "badCertId"
        }
    }

    /// What the failure usually means and what to try.
    public var explanation: String {
        switch self {
        case .badAlg:
            return "the server does not accept an algorithm we used; check GetCACaps (`enroll-agent ca-info`) and the profile's content_encryption"
        case .badMessageCheck:
            return "the server could not verify our request's signature or integrity"
        case .badRequest:
            return "the server refused the request: most often a wrong, expired or already used challenge, or a subject/SAN the CA's policy does not allow"
        case .badTime:
            return "the server considers the request's time wrong: check this host's clock (timedatectl)"
        case .badCertID:
            return "the server does not know the certificate the request refers to (renewal with a certificate it did not issue?)"
        }
    }
}
