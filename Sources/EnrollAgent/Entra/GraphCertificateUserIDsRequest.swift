/// The Microsoft Graph request that sets a user's `certificateUserIds`
/// ("Update certificateUserIds using Microsoft Graph queries"):
///
/// ```http
/// PATCH https://graph.microsoft.com/v1.0/users/{user-object-id}
/// Content-Type: application/json
/// {"authorizationInfo": {"certificateUserIds": ["X509:<PN>…"]}}
/// ```
///
/// The PATCH replaces the whole list: values the user already has and should keep
/// (another device's certificate) must be sent again.
struct GraphCertificateUserIDsRequest: Encodable, Sendable {
    struct Body: Encodable, Sendable {
        struct AuthorizationInfo: Encodable, Sendable {
            let certificateUserIds: [String]
        }
        let authorizationInfo: AuthorizationInfo
    }

    let method = "PATCH"
    /// `{user-object-id}` is the Entra user's object ID (or UPN), filled in by the caller.
    let url = "https://graph.microsoft.com/v1.0/users/{user-object-id}"
    let body: Body

    init(values: [CertificateUserID]) {
        body = Body(authorizationInfo: .init(certificateUserIds: values.map(\.value)))
    }
}
