import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A configuration template such as `CN={{UserPrincipalName}},O=Example`.
///
/// `{{Name}}` (spaces inside the braces allowed) is replaced by a variable's value;
/// substituted values are never scanned again, so a value containing `{{...}}` stays as is.
/// Single braces are ordinary text.
struct TextTemplate: Equatable, Sendable {
    enum Segment: Equatable, Sendable {
        case literal(String)
        case variable(String)
    }

    let source: String
    let segments: [Segment]

    /// Parses `source`; throws `TemplateError` for `{{` without `}}` or a bad variable name.
    init(_ source: String) throws {
        self.source = source
        var segments: [Segment] = []
        var literal = ""
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            literal += rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.range(of: "}}") else {
                throw TemplateError(template: source, reason: .unterminated)
            }
            let name = afterOpen[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else {
                throw TemplateError(template: source, reason: .emptyName)
            }
            guard Self.isValidVariableName(name) else {
                throw TemplateError(template: source, reason: .invalidName(name))
            }
            if !literal.isEmpty {
                segments.append(.literal(literal))
                literal = ""
            }
            segments.append(.variable(name))
            rest = afterOpen[close.upperBound...]
        }
        literal += rest
        if !literal.isEmpty {
            segments.append(.literal(literal))
        }
        self.segments = segments
    }

    /// Variable names used, in order of first use.
    var variableNames: [String] {
        var seen = Set<String>()
        return segments.compactMap { segment in
            guard case .variable(let name) = segment, seen.insert(name).inserted else { return nil }
            return name
        }
    }

    /// Substitutes every variable; `escapeValue` is applied to substituted values only
    /// (e.g. RFC 4514 escaping when the result is a distinguished name).
    func render(_ variables: [String: String],
                escapeValue: (String) -> String = { $0 }) throws -> String {
        try render(resolving: { variables[$0] }, known: { variables.keys.sorted() }, escapeValue: escapeValue)
    }

    /// Substitutes every variable with `resolve(name)`; nil means no such variable (the error
    /// then lists `known()`), and a `TemplateError.Reason` thrown by `resolve` is reported
    /// with this template.
    func render(resolving resolve: (String) throws -> String?, known: () -> [String],
                escapeValue: (String) -> String = { $0 }) throws -> String {
        var output = ""
        for segment in segments {
            switch segment {
            case .literal(let text):
                output += text
            case .variable(let name):
                let value: String?
                do { value = try resolve(name) } catch let reason as TemplateError.Reason {
                    throw TemplateError(template: source, reason: reason)
                }
                guard let value else {
                    throw TemplateError(template: source, reason: .unknownVariable(name: name, known: known()))
                }
                output += escapeValue(value)
            }
        }
        return output
    }

    /// Letters, digits and `_`, not starting with a digit.
    static func isValidVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", "_": return true
            default: return false
            }
        }
    }
}

/// A template that cannot be parsed or rendered.
struct TemplateError: Error, Equatable, Sendable, CustomStringConvertible {
    enum Reason: Error, Equatable, Sendable {
        /// `{{` without a matching `}}`.
        case unterminated
        /// `{{}}`.
        case emptyName
        /// `{{a-b}}`: names are letters, digits and `_`.
        case invalidName(String)
        /// A variable with no value; `known` lists the variables that have one.
        case unknownVariable(name: String, known: [String])
        /// A built-in variable this host cannot supply.
        case unavailable(HostVariableError)
        /// A value (from `source`) with control characters: a line break in a subject or SAN
        /// would forge log lines and confuse every program that prints the certificate.
        case controlCharacters(name: String, source: String)
    }

    var template: String
    var reason: Reason

    /// The problem without the template text (for messages that already name the key).
    var reasonDescription: String {
        switch reason {
        case .unterminated:
            return "'{{' without a closing '}}'"
        case .emptyName:
            return "empty variable name in '{{}}'"
        case .invalidName(let name):
            return "invalid variable name {{\(name)}} (use letters, digits and '_')"
        case .unknownVariable(let name, let known):
            let list = known.isEmpty ? "none" : known.joined(separator: ", ")
            return "unknown variable {{\(name)}} (variables with a value: \(list))"
        case .unavailable(let error):
            return error.description
        case .controlCharacters(let name, let source):
            return "{{\(name)}} from \(source) holds control characters (a value must be one line of plain text); refused"
        }
    }

    var description: String {
        "template \"\(template)\": \(reasonDescription)"
    }
}

/// Renders a profile's templates with its variables.
///
/// Precedence, lowest first: built-ins (``HostVariable``, read from the host only when a
/// template uses them), `[profile.variables]`, variables returned by the challenge endpoint
/// (the management system knows the device best). Values with control characters are refused,
/// naming the variable and where it came from.
struct TemplateRenderer: Sendable {
    static let profileSource = "[profile.variables]"
    static let endpointSource = "the management endpoint's variables"

    var profileVariables: [String: String]
    var endpointVariables: [String: String]
    /// nil: no built-ins (tests, and checks that must not read the host).
    var host: HostIdentity?

    init(variables: [String: String]) {
        profileVariables = variables
        endpointVariables = [:]
        host = nil
    }

    init(host: HostIdentity?, profileVariables: [String: String] = [:],
         endpointVariables: [String: String] = [:]) {
        self.host = host
        self.profileVariables = profileVariables
        self.endpointVariables = endpointVariables
    }

    /// Every variable name a template may use here.
    var knownNames: [String] {
        var names = Set(profileVariables.keys).union(endpointVariables.keys)
        if host != nil { names.formUnion(HostVariable.names) }
        return names.sorted()
    }

    /// The value of `name`, nil when no source defines it; throws `TemplateError.Reason`.
    func value(of name: String) throws -> String? {
        for (variables, source) in [(endpointVariables, Self.endpointSource), (profileVariables, Self.profileSource)] {
            guard let value = variables[name] else { continue }
            guard HostIdentity.isPlainText(value) else {
                throw TemplateError.Reason.controlCharacters(name: name, source: source)
            }
            return value
        }
        guard let host, let variable = HostVariable(rawValue: name) else { return nil }
        do {
            return try host.value(of: variable)
        } catch let error as HostVariableError {
            throw TemplateError.Reason.unavailable(error)
        }
    }

    private func render(_ template: TextTemplate, escapeValue: (String) -> String = { $0 }) throws -> String {
        try template.render(resolving: value(of:), known: { knownNames }, escapeValue: escapeValue)
    }

    /// Renders one template; throws `TemplateError`.
    func render(_ template: String) throws -> String {
        try render(TextTemplate(template))
    }

    /// Renders each template (e.g. a `san_dns` list); throws `TemplateError`.
    func render(_ templates: [String]) throws -> [String] {
        try templates.map(render)
    }

    /// Renders a subject template and parses the result as a distinguished name.
    /// Substituted values are RFC 4514-escaped first, so a value such as "Example, Inc."
    /// stays one attribute value. Throws `TemplateError` or `SubjectNameError`.
    func renderSubject(_ template: String) throws -> SubjectName {
        let text = try render(TextTemplate(template), escapeValue: SubjectName.escape)
        return try SubjectName.parse(text)
    }
}
