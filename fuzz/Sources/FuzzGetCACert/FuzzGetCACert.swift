// libFuzzer harness: the GetCACert reply body (a DER certificate or a certs-only PKCS#7, BER
// accepted), then what the agent does with it: fingerprints, CA and key-usage roles, and
// CACertificates.classify / .validated against the pin (path building to the pinned CAs with
// the resource limits, RA trust, the choice of envelope recipient and reply signers).
// Built and run by scripts/fuzz.sh; see fuzz/README.md.
//
// The pin holds the captured scepserver CA (fuzz/capture/ca.pem) and the fuzz PKI's CA
// (fuzz/capture/pki/, make-pki-seeds.sh: its RAs, ladders and sub CA are the seeds), and pins
// the fuzz PKI's purpose-less RA by fingerprint (ra_pin_sha256). It is tried twice: as a
// ca_pin_file, and as ca_pin_sha256 fingerprints only (then the anchors are the server's own
// certificates with a pinned fingerprint). Validity is checked at a fixed date.
import Foundation
import FuzzFixtures
import SwiftASN1
@testable import SCEPClient
import X509

private let captureCA = FuzzFixtures.certificates("ca.pem")
private let fuzzCA = FuzzFixtures.certificates("pki/ca.pem")
private let pinnedRA = FuzzFixtures.certificates("pki/pinned-ra.pem").map(PinnedCA.fingerprint(of:))
private let pins: [PinnedCA] = {
    do {
        return [
            try PinnedCA(pinnedCertificates: captureCA + fuzzCA, fingerprints: [], raFingerprints: pinnedRA),
            try PinnedCA(pinnedCertificates: [], fingerprints: (captureCA + fuzzCA).map(PinnedCA.fingerprint(of:)),
                         raFingerprints: pinnedRA),
        ]
    } catch {
        fatalError("cannot build the pins: \(error)")
    }
}()
private let window = FuzzFixtures.window
private let limits = PathBuildingLimits()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGetCACert(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let certificates: [Certificate]
    do {
        certificates = try CACertificates.parseReply(body)
    } catch let error as SCEPError {
        precondition(error.code == .malformedReply, "parseReply failed with \(error.code): \(error.message)")
        return 0
    } catch {
        preconditionFailure("parseReply threw something other than an SCEPError: \(error)")
    }
    precondition(!certificates.isEmpty, "parseReply succeeded with no certificate")
    for certificate in certificates {
        // What is pinned and compared is the DER: it must be the bytes that were parsed.
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        precondition((try? Certificate(derEncoded: serializer.serializedBytes)) == certificate,
                     "a parsed certificate does not survive a DER round trip")
        _ = CACertificates.isCA(certificate)
        _ = CACertificates.allows(certificate, \.keyEncipherment)
        _ = CACertificates.allows(certificate, \.digitalSignature)
    }
    for (index, pin) in pins.enumerated() {
        // The work is recounted for the first pin only: it doubles the cost of an input.
        FuzzFixtures.blocking { await checkAgainstPin(certificates, pin: pin, recount: index == 0) }
    }
    return 0
}

/// validated (and so classify), and the invariants that must hold whatever the server sent.
private func checkAgainstPin(_ certificates: [Certificate], pin: PinnedCA, recount recountWork: Bool) async {
    let anchors = pin.anchors(among: certificates)
    let outcome: Result<CACertificates, SCEPError>
    do {
        outcome = .success(try await CACertificates.validated(certificates, pin: pin, window: window, limits: limits))
    } catch let error as SCEPError {
        checkMessage(error.message)
        outcome = .failure(error)
    } catch {
        preconditionFailure("validated threw something other than an SCEPError: \(error)")
    }
    // The roles: validated's, or, when it failed, classify's (to tell its failures from validated's own).
    let classified: [ClassifiedCertificate]
    switch outcome {
    case .success(let result):
        classified = result.classified
    case .failure(let refusal):
        do {
            classified = try await CACertificates.classify(certificates, pin: pin, window: window, limits: limits)
        } catch let error as SCEPError {
            precondition(error.code == refusal.code, "validated failed with \(refusal.code), classify with \(error.code)")
            switch error.code {
            case .untrustedCertificate:
                precondition(anchors.isEmpty, "classify refused an answer with a pinned anchor: \(error.message)")
            case .resourceLimit:
                precondition(!anchors.isEmpty, "a resource limit was hit before the pin was checked")
            default:
                preconditionFailure("classify failed with \(error.code): \(error.message)")
            }
            return
        } catch {
            preconditionFailure("classify threw something other than an SCEPError: \(error)")
        }
    }
    precondition(!anchors.isEmpty, "classify accepted an answer without any pinned certificate")
    precondition(certificates.count <= limits.maxCertificates,
                 "classify looked at \(certificates.count) certificates, more than maxCertificates")
    precondition(classified.map(\.certificate) == certificates, "classify changed, dropped or reordered certificates")
    if recountWork { await recount(certificates, anchors: anchors, pin: pin, classified: classified) }

    for entry in classified {
        precondition(entry.sha256 == PinnedCA.fingerprint(of: entry.certificate), "a wrong fingerprint")
        checkMessage(entry.explanation)
        precondition(entry.raPinLine.contains(entry.sha256), "raPinLine does not name the certificate")
        if entry.role.isTrusted {
            precondition(window.problem(with: entry.certificate) == nil, "a certificate outside its validity is trusted: \(entry.role)")
        }
        switch entry.role {
        case .pinnedCA:
            precondition(anchors.contains(entry.certificate), "a certificate that is not pinned is the pinned CA")
        case .caOnPath:
            precondition(entry.isCA, "a certificate without cA=TRUE is a CA on the path")
        case .trustedRA(let reason):
            precondition(!entry.isCA, "a CA certificate is trusted as an RA")
            if reason == .pinned {
                precondition(pin.raFingerprints.contains(entry.sha256), "an RA is trusted as pinned without its fingerprint")
            } else {
                precondition(CACertificates.raPurpose(of: entry.certificate) == reason, "an RA is trusted for a purpose it lacks")
            }
        case .untrustedRA:
            precondition(!entry.isCA && CACertificates.raPurpose(of: entry.certificate) == nil
                         && !pin.raFingerprints.contains(entry.sha256), "an RA with a purpose or a pin is untrusted")
        case .ignored:
            break
        }
    }

    func role(_ certificate: Certificate) -> CertificateRole? {
        classified.first(where: { $0.certificate == certificate })?.role
    }
    let trustedRAs = classified.filter { if case .trustedRA = $0.role { return true }; return false }
    let offeredRAs = classified.filter { entry in
        switch entry.role {
        case .trustedRA, .untrustedRA: return true
        default: return false
        }
    }
    let issuingCAFound = classified.contains { $0.role == .pinnedCA }
        || anchors.contains { anchor in classified.contains { $0.role.isTrusted && $0.certificate.issuer == anchor.subject } }
    let someRAEncrypts = trustedRAs.contains { CACertificates.allows($0.certificate, \.keyEncipherment) }
    switch outcome {
    case .success(let result):
        precondition(result.all == certificates, "validated changed the server's certificates")
        precondition(result.untrusted == classified.filter { !$0.role.isTrusted }, "untrusted lists the wrong certificates")
        // The envelope (and the challenge inside it) only ever goes to a trusted certificate the server sent.
        precondition(role(result.encryptionRecipient)?.isTrusted == true,
                     "the encryption recipient is not a trusted certificate: \(String(describing: role(result.encryptionRecipient)))")
        if someRAEncrypts {
            guard case .trustedRA? = role(result.encryptionRecipient) else {
                preconditionFailure("a trusted RA with keyEncipherment was passed over for \(String(describing: role(result.encryptionRecipient)))")
            }
        }
        if case .trustedRA? = role(result.encryptionRecipient) {
            precondition(CACertificates.allows(result.encryptionRecipient, \.keyEncipherment), "an RA without keyEncipherment is the recipient")
        } else {
            precondition(offeredRAs.isEmpty, "the CA is the recipient although the server offers RAs")
        }
        // (It may be a pinned CA the server did not send, when what it sent chains to it.)
        precondition(anchors.contains(result.issuingCA), "the issuing CA is not a pinned certificate")
        precondition(Set(result.replySigners).count == result.replySigners.count, "a reply signer is listed twice")
        for signer in result.replySigners {
            switch role(signer) {
            case .pinnedCA?, .caOnPath?: break
            case .trustedRA?:
                precondition(CACertificates.allows(signer, \.digitalSignature), "an RA without digitalSignature may sign replies")
            default:
                preconditionFailure("an untrusted certificate may sign replies: \(String(describing: role(signer)))")
            }
        }
        precondition(result.chain.last == result.issuingCA, "the chain does not end at the issuing CA")
        for certificate in result.chain.dropLast() {
            precondition(role(certificate) == .pinnedCA || role(certificate) == .caOnPath, "a chain certificate is not a trusted CA")
        }
    case .failure(let error):
        precondition(error.code == .untrustedCertificate, "validated failed with \(error.code) after classify succeeded: \(error.message)")
        precondition(!issuingCAFound || (!someRAEncrypts && !offeredRAs.isEmpty),
                     "validated refused an answer with a usable CA and recipient: \(error.message)")
    }
}

/// Redoes classify's path building with a builder of our own, to count its work and check
/// each path it finds link by link.
private func recount(_ certificates: [Certificate], anchors: [Certificate], pin: PinnedCA,
                     classified: [ClassifiedCertificate]) async {
    let builder: CertificatePathBuilder
    do {
        builder = try CertificatePathBuilder(anchors: anchors, candidates: certificates, window: window, limits: limits)
    } catch {
        preconditionFailure("the builder refused what classify accepted: \(error)")
    }
    for (certificate, entry) in zip(certificates, classified) where !anchors.contains(certificate) {
        let role = CACertificates.isCA(certificate) ? "CA" : "RA"
        var chains = false
        do {
            let path = try await builder.path(from: certificate, role: role)
            chains = true
            precondition(path.first == certificate && anchors.contains(path.last!), "a path that does not run from the certificate to an anchor")
            precondition(path.count <= limits.maxPathLength, "a path of \(path.count) certificates, more than maxPathLength")
            for (child, issuer) in zip(path, path.dropFirst()) {
                precondition(child.issuer == issuer.subject, "a path link whose names do not match")
                precondition(issuer.publicKey.isValidSignature(child.signature, for: child), "a path link whose signature does not verify")
            }
            for link in path {
                precondition(window.problem(with: link) == nil, "a path through a certificate outside its validity")
            }
        } catch let error as SCEPError where error.code == .untrustedCertificate {
            checkMessage(error.message)
        } catch {
            // Deterministic: the same certificates in the same order do the same work as classify.
            preconditionFailure("the recount failed where classify did not: \(error)")
        }
        // The work is bounded: each (certificate, issuer key) pair is verified at most once.
        precondition(builder.signatureChecksUsed <= limits.maxSignatureChecks, "more signature checks than maxSignatureChecks")
        precondition(builder.signatureChecksUsed <= certificates.count * (certificates.count + anchors.count),
                     "\(builder.signatureChecksUsed) signature checks for \(certificates.count) certificates: a pair was verified twice")
        let pinnedRA = !CACertificates.isCA(certificate) && pin.raFingerprints.contains(entry.sha256)
        if !pinnedRA {
            switch entry.role {
            case .caOnPath, .trustedRA, .untrustedRA:
                precondition(chains, "\(entry.role) for a certificate without a path to the pin")
            case .ignored:
                precondition(!chains, "a certificate with a path to the pin is ignored: \(entry.explanation)")
            case .pinnedCA:
                preconditionFailure("a certificate that is not an anchor is the pinned CA")
            }
        }
    }
}

/// Server text in a message is escaped: no line breaks, control characters or bidi overrides.
private func checkMessage(_ message: String) {
    precondition(!message.isEmpty, "an empty message")
    precondition(!message.unicodeScalars.contains(where: ServerText.needsEscaping),
                 "a message with unescaped control or bidi characters: \(message.debugDescription)")
}
