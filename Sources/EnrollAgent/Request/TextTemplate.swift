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
        var output = ""
        for segment in segments {
            switch segment {
            case .literal(let text):
                output += text
            case .variable(let name):
                guard let value = variables[name] else {
                    throw TemplateError(template: source,
                                        reason: .unknownVariable(name: name, known: variables.keys.sorted()))
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
    enum Reason: Equatable, Sendable {
        /// `{{` without a matching `}}`.
        case unterminated
        /// `{{}}`.
        case emptyName
        /// `{{a-b}}`: names are letters, digits and `_`.
        case invalidName(String)
        /// A variable with no value; `known` lists the variables that have one.
        case unknownVariable(name: String, known: [String])
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
        }
    }

    var description: String {
        "template \"\(template)\": \(reasonDescription)"
    }
}

/// Renders a profile's templates with its variables.
///
/// Precedence, lowest first: built-ins (`Hostname`, `MachineID`), `[profile.variables]`,
/// variables returned by the challenge endpoint (the management system knows the device best).
struct TemplateRenderer: Sendable {
    var variables: [String: String]

    init(variables: [String: String]) {
        self.variables = variables
    }

    init(host: HostIdentity, profileVariables: [String: String] = [:],
         endpointVariables: [String: String] = [:]) {
        var merged = host.variables
        merged.merge(profileVariables) { _, new in new }
        merged.merge(endpointVariables) { _, new in new }
        variables = merged
    }

    /// Renders one template; throws `TemplateError`.
    func render(_ template: String) throws -> String {
        try TextTemplate(template).render(variables)
    }

    /// Renders each template (e.g. a `san_dns` list); throws `TemplateError`.
    func render(_ templates: [String]) throws -> [String] {
        try templates.map(render)
    }

    /// Renders a subject template and parses the result as a distinguished name.
    /// Substituted values are RFC 4514-escaped first, so a value such as "Example, Inc."
    /// stays one attribute value. Throws `TemplateError` or `SubjectNameError`.
    func renderSubject(_ template: String) throws -> SubjectName {
        let text = try TextTemplate(template).render(variables, escapeValue: SubjectName.escape)
        return try SubjectName.parse(text)
    }
}
