//! Cross-checks `shared::cookie` and `shared::tokens` against the official `@workos-inc/node` SDK.
//!
//! The tests run the Node scripts in `tests/node/tools/` with the SDK installed in
//! `tests/node/node_modules`. `seal-session.mjs` seals a session through the SDK's own login
//! path. `read-session.mjs` reads a cookie with `getSessionFromCookie` and with
//! `loadSealedSession(...).authenticate()`, which verifies the access token against a JWKS
//! served on 127.0.0.1. Node.js and `npm ci --prefix tests/node` are required.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shared::cookie::{self, SessionCookieData};
use shared::tokens::{
    AccessTokenClaims, KeyEncryptionKey, Signer, SigningKeyStatus, StoredSigningKey,
    generate_signing_key, jwks,
};

const COOKIE_PASSWORD: &str = "cross-language-cookie-password-0123456789";
const OTHER_PASSWORD: &str = "a-different-cookie-password-9876543210";

fn node_project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

/// Runs `tests/node/tools/<script>` with `input` as JSON on stdin and parses its JSON stdout.
fn run_tool(script: &str, input: &Value) -> Value {
    let project = node_project_dir();
    let sdk = project.join("node_modules/@workos-inc/node/package.json");
    assert!(
        sdk.is_file(),
        "the WorkOS Node SDK is not installed at {}; run `npm ci --prefix tests/node` from the \
         repository root",
        sdk.display()
    );

    let mut child = Command::new("node")
        .arg(project.join("tools").join(script))
        .current_dir(&project)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("failed to start `node` (is Node.js installed?): {error}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.to_string().as_bytes())
        .expect("write the request to node");
    let output = child.wait_with_output().expect("wait for node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed with {}: {stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{script} printed invalid JSON ({error}); stderr: {stderr}"))
}

struct TokenFixture {
    key: StoredSigningKey,
    signer: Signer,
}

impl TokenFixture {
    fn new() -> Self {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate key");
        Self {
            key,
            signer: Signer::new(kek),
        }
    }

    fn sign(&self, claims: &AccessTokenClaims) -> String {
        self.signer.sign(&self.key, claims).expect("sign")
    }

    fn jwks(&self) -> Value {
        jwks(std::slice::from_ref(&self.key))
    }
}

fn claims(org_id: Option<&str>, entitlements: Option<Vec<&str>>) -> AccessTokenClaims {
    let now = chrono::Utc::now().timestamp();
    let to_strings = |values: Vec<&str>| values.into_iter().map(str::to_owned).collect();
    AccessTokenClaims {
        iss: "https://auth.example.test".to_owned(),
        sub: "user_01HXYZ".to_owned(),
        sid: "session_01HXYZ".to_owned(),
        jti: "01HXYZJTI".to_owned(),
        iat: now,
        exp: now + 300,
        auth_time: now - 600,
        org_id: org_id.map(str::to_owned),
        role: org_id.map(|_| "admin".to_owned()),
        roles: org_id.map(|_| to_strings(vec!["admin", "member"])),
        permissions: org_id.map(|_| to_strings(vec!["billing:read"])),
        entitlements: entitlements.map(to_strings),
    }
}

/// Builds a WorkOS API user with every field set and timestamps in two precisions.
fn full_api_user() -> Value {
    json!({
        "object": "user",
        "id": "user_01HXYZ",
        "email": "ada@example.com",
        "email_verified": true,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name": "Ada Lovelace",
        "profile_picture_url": "https://example.com/ada.png",
        "last_sign_in_at": "2026-03-04T05:06:07Z",
        "locale": "en-GB",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-02-03T04:05:06.789Z",
        "external_id": "ext-42",
        "metadata": {"plan": "pro", "seats": "5"},
    })
}

/// Builds a user with only the required fields, so the SDK fills in its defaults.
fn sparse_api_user() -> Value {
    json!({
        "object": "user",
        "id": "user_01HABC",
        "email": "bob@example.com",
        "email_verified": false,
        "first_name": null,
        "last_name": null,
        "profile_picture_url": null,
        "last_sign_in_at": null,
        "locale": null,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

fn seal_with_sdk(authenticate_response: &Value) -> String {
    let output = run_tool(
        "seal-session.mjs",
        &json!({
            "cookiePassword": COOKIE_PASSWORD,
            "authenticateResponse": authenticate_response,
        }),
    );
    output["sealedSession"]
        .as_str()
        .expect("sealedSession is a string")
        .to_owned()
}

fn read_with_sdk(sealed: &str, password: &str, jwks: Option<&Value>) -> Value {
    run_tool(
        "read-session.mjs",
        &json!({
            "cookiePassword": password,
            "sealedSession": sealed,
            "jwks": jwks,
        }),
    )
}

fn unseal_in_rust(sealed: &str) -> SessionCookieData {
    let value = cookie::unseal(COOKIE_PASSWORD, sealed).expect("Rust unseals the SDK cookie");
    serde_json::from_value(value).expect("cookie holds SessionCookieData")
}

#[test]
fn sdk_sealed_session_unseals_in_rust() {
    let tokens = TokenFixture::new();
    let access_token = tokens.sign(&claims(Some("org_01HXYZ"), Some(vec!["audit-logs"])));
    let impersonator = json!({"email": "support@example.com", "reason": "ticket 12"});
    let response = json!({
        "user": full_api_user(),
        "organization_id": "org_01HXYZ",
        "access_token": access_token,
        "refresh_token": "rt_sdk_full",
        "authentication_method": "Password",
        "impersonator": impersonator,
    });

    let sealed = seal_with_sdk(&response);
    assert!(sealed.starts_with("Fe26.2*1*"), "prefix and password id");
    assert!(sealed.ends_with("~2"), "version suffix");
    let body = sealed.strip_suffix("~2").expect("suffix");
    assert_eq!(body.split('*').count(), 8);
    assert_eq!(body.split('*').nth(5), Some(""), "empty expiration");

    let data = unseal_in_rust(&sealed);
    assert_eq!(data.access_token, access_token);
    assert_eq!(data.refresh_token, "rt_sdk_full");
    assert_eq!(data.organization_id.as_deref(), Some("org_01HXYZ"));
    assert_eq!(data.authentication_method.as_deref(), Some("Password"));
    assert_eq!(data.impersonator, Some(impersonator));
    assert_eq!(data.user, cookie::user_to_cookie_json(&full_api_user()));
}

#[test]
fn sdk_sealed_sparse_session_unseals_in_rust() {
    let tokens = TokenFixture::new();
    let access_token = tokens.sign(&claims(None, None));
    let response = json!({
        "user": sparse_api_user(),
        "access_token": access_token,
        "refresh_token": "rt_sdk_sparse",
    });

    let sealed = seal_with_sdk(&response);
    let data = unseal_in_rust(&sealed);
    assert_eq!(data.access_token, access_token);
    assert_eq!(data.refresh_token, "rt_sdk_sparse");
    assert_eq!(data.organization_id, None);
    assert_eq!(data.authentication_method, None);
    assert_eq!(data.impersonator, None);
    assert_eq!(data.user, cookie::user_to_cookie_json(&sparse_api_user()));
}

#[test]
fn rust_sealed_session_reads_in_sdk() {
    let tokens = TokenFixture::new();
    let token_claims = claims(Some("org_01HXYZ"), Some(vec!["audit-logs", "sso"]));
    let access_token = tokens.sign(&token_claims);
    let user = cookie::user_to_cookie_json(&full_api_user());
    let impersonator = json!({"email": "support@example.com", "reason": null});
    let data = SessionCookieData {
        access_token: access_token.clone(),
        refresh_token: "rt_rust".to_owned(),
        user: user.clone(),
        organization_id: Some("org_01HXYZ".to_owned()),
        authentication_method: Some("Password".to_owned()),
        impersonator: Some(impersonator.clone()),
    };
    let sealed = cookie::seal(
        COOKIE_PASSWORD,
        &serde_json::to_value(&data).expect("serialize"),
    )
    .expect("seal");

    let output = read_with_sdk(&sealed, COOKIE_PASSWORD, Some(&tokens.jwks()));

    let session = &output["session"];
    assert_eq!(session["accessToken"], json!(access_token));
    assert_eq!(session["refreshToken"], json!("rt_rust"));
    assert_eq!(session["organizationId"], json!("org_01HXYZ"));
    assert_eq!(session["authenticationMethod"], json!("Password"));
    assert_eq!(session["impersonator"], impersonator);
    assert_eq!(session["user"], user);

    let authentication = &output["authentication"];
    assert_eq!(
        authentication["authenticated"],
        json!(true),
        "{authentication}"
    );
    assert_eq!(authentication["sessionId"], json!(token_claims.sid));
    assert_eq!(authentication["organizationId"], json!(token_claims.org_id));
    assert_eq!(authentication["role"], json!(token_claims.role));
    assert_eq!(authentication["roles"], json!(token_claims.roles));
    assert_eq!(
        authentication["permissions"],
        json!(token_claims.permissions)
    );
    assert_eq!(authentication["entitlements"], json!(["audit-logs", "sso"]));
    assert_eq!(authentication["accessToken"], json!(access_token));
    assert_eq!(authentication["user"], user);
    assert_eq!(authentication["authenticationMethod"], json!("Password"));
    assert_eq!(authentication["impersonator"], impersonator);
}

#[test]
fn sdk_sees_no_entitlements_when_claim_absent() {
    let tokens = TokenFixture::new();
    let access_token = tokens.sign(&claims(Some("org_01HXYZ"), None));
    let data = SessionCookieData {
        access_token,
        refresh_token: "rt_rust".to_owned(),
        user: cookie::user_to_cookie_json(&sparse_api_user()),
        organization_id: Some("org_01HXYZ".to_owned()),
        authentication_method: None,
        impersonator: None,
    };
    let sealed = cookie::seal(
        COOKIE_PASSWORD,
        &serde_json::to_value(&data).expect("serialize"),
    )
    .expect("seal");

    let output = read_with_sdk(&sealed, COOKIE_PASSWORD, Some(&tokens.jwks()));
    let authentication = &output["authentication"];
    assert_eq!(
        authentication["authenticated"],
        json!(true),
        "{authentication}"
    );
    assert!(
        authentication.get("entitlements").is_none(),
        "{authentication}"
    );
    assert!(
        output["session"].get("authenticationMethod").is_none(),
        "{output}"
    );
}

#[test]
fn sdk_rejects_rust_cookie_with_wrong_password() {
    let tokens = TokenFixture::new();
    let data = json!({
        "accessToken": tokens.sign(&claims(None, None)),
        "refreshToken": "rt_rust",
        "user": cookie::user_to_cookie_json(&sparse_api_user()),
    });
    let sealed = cookie::seal(COOKIE_PASSWORD, &data).expect("seal");

    let output = read_with_sdk(&sealed, OTHER_PASSWORD, Some(&tokens.jwks()));
    assert_eq!(output["session"], json!({}));
    assert_eq!(output["authentication"]["authenticated"], json!(false));
    assert_eq!(
        output["authentication"]["reason"],
        json!("invalid_session_cookie")
    );
}

#[test]
fn sdk_rejects_tampered_rust_cookie() {
    let tokens = TokenFixture::new();
    let data = json!({
        "accessToken": tokens.sign(&claims(None, None)),
        "refreshToken": "rt_rust",
        "user": cookie::user_to_cookie_json(&sparse_api_user()),
    });
    let sealed = cookie::seal(COOKIE_PASSWORD, &data).expect("seal");
    let mut fields: Vec<String> = sealed.split('*').map(str::to_owned).collect();
    let first = fields[4].remove(0);
    fields[4].insert(0, if first == 'A' { 'B' } else { 'A' });
    let tampered = fields.join("*");

    let output = read_with_sdk(&tampered, COOKIE_PASSWORD, None);
    assert_eq!(output["session"], json!({}));
}

#[test]
fn sdk_rejects_token_of_unpublished_key() {
    let signing = TokenFixture::new();
    let published = TokenFixture::new();
    let data = json!({
        "accessToken": signing.sign(&claims(Some("org_01HXYZ"), None)),
        "refreshToken": "rt_rust",
        "user": cookie::user_to_cookie_json(&sparse_api_user()),
    });
    let sealed = cookie::seal(COOKIE_PASSWORD, &data).expect("seal");

    let output = read_with_sdk(&sealed, COOKIE_PASSWORD, Some(&published.jwks()));
    assert_eq!(output["session"]["refreshToken"], json!("rt_rust"));
    assert_eq!(output["authentication"]["authenticated"], json!(false));
    assert_eq!(output["authentication"]["reason"], json!("invalid_jwt"));
}
