/// A value that must never be printed: the SCEP challenge, bearer tokens.
/// Its description is fixed, so string interpolation into a log line or an
/// error message cannot leak it.
struct Secret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable, Sendable {
    let value: String
    init(_ value: String) { self.value = value }
    var description: String { "<redacted>" }
    var debugDescription: String { "<redacted>" }
    /// `dump` and other reflection see no children, so no stored value.
    var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
