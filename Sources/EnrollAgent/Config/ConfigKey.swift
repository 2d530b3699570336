import Foundation

/// One configuration key, declared once: its name, type, default, how it is decoded and
/// checked, and its documentation. The decoder, the unknown-key and did-you-mean reports,
/// `enroll-agent config-keys`, `packaging/config.example.toml` and the README's key table all
/// read these declarations (`ConfigKeys`), so they cannot drift apart; `ConfigReferenceTests`
/// fails when a generated file was not regenerated.
struct ConfigKey<Target> {
    /// As written in the file, inside its table (`key_bits`, `url`).
    var name: String
    var type: ConfigValueType
    var defaultValue: ConfigDefault
    /// One line for the README table and `config-keys`.
    var summary: String
    /// Comment lines above the key in the example file (without "# "); empty: the key
    /// follows the previous one without a blank line.
    var comment: [String] = []
    /// How the key appears in the example file.
    var example: ConfigExample = .omitted
    /// Reads the key (when present) into the target, reporting problems to the reader.
    var decode: (ConfigTableReader, inout Target) -> Void
}

/// What kind of value a key takes, as documentation shows it.
enum ConfigValueType: Equatable {
    case string
    case integer
    case boolean
    case duration
    case absolutePath
    case url
    case choice([String])
    /// A list whose elements are each one of the choices.
    case choiceList([String])
    case stringList
    case stringOrList
    case command
    case table
    /// A subject or SAN template (`{{Name}}` variables).
    case template
    case templateList

    var description: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .boolean: return "boolean"
        case .duration: return "duration"
        case .absolutePath: return "absolute path"
        case .url: return "URL"
        case .choice(let choices): return choices.map { "`\"\($0)\"`" }.joined(separator: " / ")
        case .choiceList(let choices): return "list of " + choices.map { "`\"\($0)\"`" }.joined(separator: ", ")
        case .stringList: return "list of strings"
        case .stringOrList: return "string or list"
        case .command: return "command (argv list)"
        case .table: return "table"
        case .template: return "template"
        case .templateList: return "list of templates"
        }
    }
}

/// A key's default, as documentation shows it.
enum ConfigDefault: Equatable {
    /// The key must be set.
    case required
    /// The default, in TOML spelling; `ConfigReferenceTests` checks that writing it
    /// explicitly decodes to the same profile as leaving the key out.
    case value(String)
    /// A default that is computed or depends on other keys, in words.
    case described(String)
    /// Unset means "none" (an optional file, an empty hook, ...).
    case none

    var description: String {
        switch self {
        case .required: return "required"
        case .value(let text): return "`\(text)`"
        case .described(let text): return text
        case .none: return "—"
        }
    }
}

/// How a key appears in `packaging/config.example.toml`.
enum ConfigExample: Equatable {
    /// `key = value`.
    case set(String)
    /// `# key = value`.
    case commented(String)
    /// `key = value`, followed by commented alternatives.
    case setWithAlternatives(String, [String])
    /// Not shown (documented in the comment of a neighbouring key).
    case omitted
}
