//! Shared set-up of the sessions router tests: a router on a fresh environment (with a signing key
//! and, optionally, a Stripe connection) on each store backend, and helpers that call it the way
//! the WorkOS Node SDK does.
//!
//! The embedded store always runs; DynamoDB runs when `DYNAMODB_ENDPOINT` names one (DynamoDB
//! Local in the test script, which also sets `REQUIRE_DYNAMODB=1` so a missing endpoint fails).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chrono::Utc;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::config::Config;
use shared::ids;
use shared::organizations::{self, CreateOrganization};
use shared::state::AppState;
use shared::store::dynamo::RequestRecorder;
use shared::store::{
    DynamoStore, EmbeddedStore, EntitlementSet, Environment, Organization, Store, StripeConnection,
    StripeMode,
};
use shared::tokens::{
    AccessTokenClaims, KeyEncryptionKey, Signer, SigningKeyStatus, generate_signing_key,
};
use tower::ServiceExt;

/// The key-encryption key of every test harness (base64 of 32 bytes).
pub const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The cookie password of every test harness.
pub const COOKIE_PASSWORD: &str = "a-cookie-password-of-at-least-32-characters";
pub const PASSWORD: &str = "correct horse battery";
/// The Stripe connection ID the harness's environment is connected under.
pub const CONNECTION_ID: &str = "conn_test";

/// How a harness is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub grace_seconds: u64,
    /// Whether the environment has a Stripe connection, so linked organizations get the claim.
    pub connected: bool,
    pub access_token_ttl_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grace_seconds: 30,
            connected: true,
            access_token_ttl_seconds: 300,
        }
    }
}

/// A router on one backend with one environment of its own.
pub struct Harness {
    pub name: &'static str,
    pub state: AppState,
    pub router: Router,
    pub environment_id: String,
    pub api_key: String,
    pub recorder: Option<RequestRecorder>,
}

/// A response: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub fn config(options: &Options) -> Config {
    let values: HashMap<&str, String> = HashMap::from([
        ("KEY_ENCRYPTION_KEY", KEK.to_owned()),
        ("COOKIE_PASSWORD", COOKIE_PASSWORD.to_owned()),
        ("REFRESH_GRACE_SECONDS", options.grace_seconds.to_string()),
        (
            "ACCESS_TOKEN_TTL_SECONDS",
            options.access_token_ttl_seconds.to_string(),
        ),
        ("TOKEN_ISSUER", "https://auth.example.test".to_owned()),
    ]);
    Config::from_lookup(|name| values.get(name).cloned()).expect("test configuration is valid")
}

pub fn kek() -> KeyEncryptionKey {
    KeyEncryptionKey::from_base64(KEK).expect("valid key")
}

/// Returns the DynamoDB endpoint and table of this run, when configured.
pub fn dynamodb() -> Option<(String, String)> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    if endpoint.is_none() && std::env::var("REQUIRE_DYNAMODB").as_deref() == Ok("1") {
        panic!("REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set; run scripts/test.sh");
    }
    let table =
        std::env::var("TABLE_NAME").unwrap_or_else(|_| shared::config::DEFAULT_TABLE_NAME.into());
    endpoint.map(|endpoint| (endpoint, table))
}

/// Creates an environment with an Active signing key and, when `connected`, a Stripe connection.
/// Returns it with its API key.
pub async fn environment(store: &dyn Store, connected: bool) -> (Environment, String) {
    let api_key = ids::new_secret("sk_test_");
    let environment = Environment {
        id: ids::new_id("client"),
        name: "sessions-test".into(),
        mode: StripeMode::Test,
        created_at: Utc::now(),
        stripe_connection: connected.then(|| StripeConnection {
            account_id: "acct_test".into(),
            livemode: false,
            scope: "read_write".into(),
            connected_at: Utc::now(),
            connection_id: CONNECTION_ID.into(),
        }),
        entitlements_enabled: true,
        signing_keys: vec![
            generate_signing_key(&kek(), SigningKeyStatus::Active).expect("key generation"),
        ],
    };
    store
        .create_environment(&environment, &ids::hash_secret(&api_key))
        .await
        .expect("environment is created");
    (environment, api_key)
}

pub async fn harness_on(
    name: &'static str,
    store: Arc<dyn Store>,
    recorder: Option<RequestRecorder>,
    options: &Options,
) -> Harness {
    let (environment, api_key) = environment(store.as_ref(), options.connected).await;
    let state =
        AppState::new(store, config(options)).with_signer(Some(Arc::new(Signer::new(kek()))));
    let router = shared::http::with_common_layers(sessions::router(state.clone()));
    Harness {
        name,
        state,
        router,
        environment_id: environment.id,
        api_key,
        recorder,
    }
}

/// Builds a harness on the embedded store.
pub async fn embedded(options: &Options) -> Harness {
    harness_on(
        "embedded",
        Arc::new(EmbeddedStore::in_memory()),
        None,
        options,
    )
    .await
}

/// Builds a harness on DynamoDB with a request recorder, when an endpoint is configured.
pub async fn dynamo(options: &Options) -> Option<Harness> {
    let (endpoint, table) = dynamodb()?;
    let recorder = RequestRecorder::new();
    let store = DynamoStore::connect(table, Some(&endpoint), Some(recorder.clone())).await;
    Some(harness_on("dynamodb", Arc::new(store), Some(recorder), options).await)
}

/// Builds a harness on every backend of this run.
pub async fn all(options: &Options) -> Vec<Harness> {
    let mut harnesses = vec![embedded(options).await];
    match dynamo(options).await {
        Some(harness) => harnesses.push(harness),
        None => eprintln!("DYNAMODB_ENDPOINT is not set: running on the embedded store only"),
    }
    harnesses
}

impl Harness {
    /// Sends a request through the router.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!("{}: body is not JSON ({error}): {bytes:?}", self.name)
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends JSON with the API key, as the SDK does.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, body, &[]).await
    }

    /// Sends JSON with the API key and extra headers.
    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::post(path)
            .header("authorization", format!("Bearer {}", self.api_key))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {}", self.api_key))
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let request = Request::delete(path)
            .header("authorization", format!("Bearer {}", self.api_key))
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    /// Creates a user with [`PASSWORD`] and returns its ID.
    pub async fn create_user(&self, email: &str) -> String {
        let reply = self
            .post(
                "/user_management/users",
                json!({ "email": email, "password": PASSWORD, "first_name": "Ada" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}: {:?}",
            self.name,
            reply.body
        );
        reply.body["id"].as_str().expect("user id").to_owned()
    }

    pub async fn create_organization(&self, name: &str) -> Organization {
        let request = CreateOrganization {
            name: name.to_owned(),
            domain_data: None,
            external_id: None,
            metadata: None,
        };
        organizations::create(&self.state, &self.environment_id, request)
            .await
            .expect("organization is created")
    }

    /// Adds a membership and returns its ID.
    pub async fn add_membership(&self, user_id: &str, organization_id: &str) -> String {
        let reply = self
            .post(
                "/user_management/organization_memberships",
                json!({ "user_id": user_id, "organization_id": organization_id }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}: {:?}",
            self.name,
            reply.body
        );
        reply.body["id"].as_str().expect("membership id").to_owned()
    }

    /// Links an organization to a Stripe customer and stores its entitlement set directly.
    pub async fn set_entitlements(&self, organization_id: &str, lookup_keys: Option<&[&str]>) {
        let store = &self.state.store;
        let current = store
            .get_organization(&self.environment_id, organization_id)
            .await
            .expect("read")
            .expect("organization exists");
        let mut updated = current.clone();
        match lookup_keys {
            Some(keys) => {
                // The random part of the ULID keeps customers unique per organization.
                updated.stripe_customer_id = Some(format!(
                    "cus_{}",
                    &organization_id[organization_id.len() - 14..]
                ));
                updated.entitlements = Some(EntitlementSet {
                    lookup_keys: shared::entitlements::normalize(
                        keys.iter().map(|key| key.to_string()).collect(),
                    ),
                    read_at_ms: Utc::now().timestamp_millis(),
                    connection_id: CONNECTION_ID.into(),
                });
            }
            None => {
                updated.stripe_customer_id = None;
                updated.entitlements = None;
            }
        }
        assert!(
            store
                .replace_organization(&current, &updated)
                .await
                .expect("write")
        );
    }

    /// Sends the password grant for a user created with [`PASSWORD`].
    pub async fn sign_in(&self, email: &str) -> Reply {
        self.post(
            "/user_management/authenticate",
            json!({
                "grant_type": "password",
                "client_id": self.environment_id,
                "client_secret": self.api_key,
                "email": email,
                "password": PASSWORD,
            }),
        )
        .await
    }

    /// Sends the refresh grant, as `CookieSession.refresh()` sends it.
    pub async fn refresh(&self, refresh_token: &str, organization_id: Option<&str>) -> Reply {
        self.refresh_with(refresh_token, organization_id, &[]).await
    }

    pub async fn refresh_with(
        &self,
        refresh_token: &str,
        organization_id: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut body = json!({
            "grant_type": "refresh_token",
            "client_id": self.environment_id,
            "client_secret": self.api_key,
            "refresh_token": refresh_token,
        });
        if let Some(organization_id) = organization_id {
            body["organization_id"] = json!(organization_id);
        }
        self.post_with("/user_management/authenticate", body, headers)
            .await
    }

    /// This environment's JWKS, fetched through the router.
    pub async fn jwks(&self) -> Value {
        let reply = self
            .get(&format!("/sso/jwks/{}", self.environment_id))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", self.name);
        reply.body
    }
}

/// Verifies an RS256 token against a JWKS document as a WorkOS SDK does: the `kid` must name a
/// key of the set, and the signature and expiry must hold.
pub fn verify(token: &str, jwks: &Value) -> Result<AccessTokenClaims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|error| error.to_string())?;
    let kid = header.kid.ok_or("token has no kid")?;
    let key = jwks["keys"]
        .as_array()
        .ok_or("JWKS has no keys")?
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .ok_or_else(|| format!("no key {kid} in the JWKS"))?;
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().ok_or("no n")?,
        key["e"].as_str().ok_or("no e")?,
    )
    .map_err(|error| error.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<AccessTokenClaims>(token, &decoding, &validation)
        .map(|data| data.claims)
        .map_err(|error| error.to_string())
}

/// Asserts an OAuth error body.
pub fn assert_oauth(reply: &Reply, status: StatusCode, error: &str, context: &str) {
    assert_eq!(reply.status, status, "{context}: {:?}", reply.body);
    assert_eq!(reply.body["error"], error, "{context}: {:?}", reply.body);
    assert!(
        reply.body["error_description"].is_string(),
        "{context}: {:?}",
        reply.body
    );
}

/// Asserts a `{message, code}` error body.
pub fn assert_code(reply: &Reply, status: StatusCode, code: &str, context: &str) {
    assert_eq!(reply.status, status, "{context}: {:?}", reply.body);
    assert_eq!(reply.body["code"], code, "{context}: {:?}", reply.body);
    assert!(
        reply.body["message"].is_string(),
        "{context}: {:?}",
        reply.body
    );
}
