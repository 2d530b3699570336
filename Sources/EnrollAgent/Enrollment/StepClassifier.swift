import CertStore
import EnrollmentPlan
import SCEPClient
import TPMKeys

/// What a step's result means for the state machine (`StepOutcome`). Pure: the rules
/// for "an unauthenticated error is not a verdict" live here, tested as a table.
enum StepClassifier {
    /// A verified answer from `send`, `resend` or `poll`.
    static func outcome(of answer: EnrollmentOutcome, action: EnrollmentAction, phase: EnrollmentPhase) -> StepOutcome? {
        switch answer {
        case .issued: return nil  // the runner installs, then reports `.installed`
        case .pending: return .pending
        case .rejected(let failInfo, let text):
            let message = EnrollmentOutcome.rejectionMessage(failInfo, text)
            if failInfo == .badCertID, action == .poll { return .unknownToCA(message) }
            return .rejected(message)
        }
    }

    /// An error thrown by a step.
    static func outcome(of error: Error, action: EnrollmentAction, phase: EnrollmentPhase) -> StepOutcome {
        let message = describe(error)
        guard let scep = error as? SCEPError else { return .localFailure(message) }
        if scep.concernsVerifiedReply { return .unreadable(message) }
        switch scep.code {
        case .httpStatus:
            // CertPoll for a request the server never acknowledged, refused as such (micromdm
            // answers every CertPoll with HTTP 500): "no such transaction here", so the same
            // request goes again. Busy or gateway answers (429, 502-504) say nothing of the kind.
            if action == .poll, case .submitted = phase, let status = scep.httpStatus, Self.refusesCertPoll(status) {
                return .unknownToCA(message)
            }
            return .unverified(message)
        case .transport, .unreachable, .redirect, .malformedReply, .untrustedCertificate, .badSignature,
             .replyMismatch, .resourceLimit, .unsupportedAlgorithm, .wrongCertificate, .decryptionFailed, .unusableCRL:
            return .unverified(message)
        case .weakAlgorithmsRefused, .invalidRequest, .crypto, .rejectedByServer, .pollTimeout:
            return .localFailure(message)
        }
    }

    static func refusesCertPoll(_ status: Int) -> Bool {
        switch status {
        case 400, 404, 405, 500, 501: return true
        default: return false
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case let agent as AgentError: return agent.reason
        default: return "\(error)"
        }
    }
}
