//! Set-up of the router tests. Each test runs the stripe-connect router on every store backend: the
//! embedded store always, and DynamoDB when `DYNAMODB_ENDPOINT` is set. A Stripe emulator runs
//! in-process on 127.0.0.1 and a free port, and helpers walk the OAuth flow through it.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chrono::Utc;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::config::Config;
use shared::environments;
use shared::ids;
use shared::state::AppState;
use shared::store::{
    DynamoStore, EmbeddedStore, EntitlementSet, Environment, Organization, Store, StripeMode,
};
use stripe_emulator::{EmulatorConfig, RunningEmulator};
use tower::ServiceExt;

/// The emulator's platform secret key and client ID, which the router is configured with.
pub const SECRET_KEY: &str = "sk_test_emulator";
pub const CLIENT_ID: &str = "ca_emulator";

/// The redirect URI the router puts into links. Tests read the emulator's redirect and call the
/// router with its query; nothing ever requests this URL.
pub const REDIRECT_URI: &str = "https://127.0.0.1/stripe/oauth/callback";

/// A store backend of this run.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    /// The same store as a `DynamoStore`, for reading raw items; `None` for the embedded store.
    pub dynamo: Option<DynamoStore>,
}

/// Returns every backend of this run: the embedded store, and DynamoDB when `DYNAMODB_ENDPOINT`
/// is set.
/// With `REQUIRE_DYNAMODB=1` a missing endpoint fails instead of skipping DynamoDB.
pub async fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend {
        name: "embedded",
        store: Arc::new(EmbeddedStore::in_memory()),
        dynamo: None,
    }];
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    match endpoint {
        Some(endpoint) => {
            let table = std::env::var("TABLE_NAME")
                .unwrap_or_else(|_| shared::config::DEFAULT_TABLE_NAME.into());
            let store = DynamoStore::connect(table, Some(&endpoint), None).await;
            backends.push(Backend {
                name: "dynamodb",
                store: Arc::new(store.clone()),
                dynamo: Some(store),
            });
        }
        None => {
            assert_ne!(
                std::env::var("REQUIRE_DYNAMODB").as_deref(),
                Ok("1"),
                "REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set"
            );
            eprintln!("DYNAMODB_ENDPOINT is not set: running on the embedded store only");
        }
    }
    backends
}

/// Options of a harness.
#[derive(Clone)]
pub struct Options {
    /// The emulated platform's mode.
    pub emulator_livemode: bool,
    /// The mode of the harness's first environment.
    pub environment_mode: StripeMode,
    /// Configuration variables set for the router, replacing the defaults of the same name;
    /// an empty value unsets one.
    pub variables: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            emulator_livemode: false,
            environment_mode: StripeMode::Test,
            variables: Vec::new(),
        }
    }
}

/// A router on one backend with an emulator and a first environment.
pub struct Harness {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    pub dynamo: Option<DynamoStore>,
    pub router: Router,
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
    pub api_key: String,
    pub environment_id: String,
}

/// A response of the router.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("body is UTF-8")
    }
}

impl Harness {
    pub async fn start(backend: &Backend) -> Harness {
        Harness::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: &Backend, options: Options) -> Harness {
        let emulator_config = EmulatorConfig {
            livemode: options.emulator_livemode,
            ..EmulatorConfig::default()
        };
        let emulator = stripe_emulator::start(emulator_config, 0)
            .await
            .expect("emulator starts");

        let mut variables: Vec<(&'static str, String)> = vec![
            ("STRIPE_SECRET_KEY", SECRET_KEY.into()),
            ("STRIPE_CLIENT_ID", CLIENT_ID.into()),
            ("STRIPE_REDIRECT_URI", REDIRECT_URI.into()),
            ("STRIPE_CONNECT_BASE", emulator.base_url.clone()),
            ("STRIPE_API_BASE", emulator.base_url.clone()),
        ];
        for (name, value) in options.variables {
            variables.retain(|(existing, _)| *existing != name);
            variables.push((name, value));
        }
        let config = Config::from_lookup(|name| {
            variables
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .expect("test configuration is valid");

        let state = AppState::new(backend.store.clone(), config);
        let router = shared::http::with_common_layers(stripe_connect::router(state));
        let created = environments::create(
            backend.store.as_ref(),
            "connect-test",
            options.environment_mode,
        )
        .await
        .expect("environment is created");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds");
        Harness {
            name: backend.name,
            store: backend.store.clone(),
            dynamo: backend.dynamo.clone(),
            router,
            emulator,
            http,
            api_key: created.api_key,
            environment_id: created.environment.id,
        }
    }

    /// Creates another environment on the same store; returns its API key and ID.
    pub async fn add_environment(&self, mode: StripeMode) -> (String, String) {
        let created = environments::create(self.store.as_ref(), "connect-test-other", mode)
            .await
            .expect("environment is created");
        (created.api_key, created.environment.id)
    }

    /// Sends a request with an API key (or none) and an optional raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        api_key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(api_key) = api_key {
            request = request.header("authorization", format!("Bearer {api_key}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_owned())))
            .expect("request builds");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body reads")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends a request with the harness's API key.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.send(method, path, Some(&self.api_key), body).await
    }

    /// Calls the OAuth callback with a raw query string.
    pub async fn callback(&self, query: &str) -> Reply {
        self.send(
            "GET",
            &format!("/stripe/oauth/callback?{query}"),
            None,
            None,
        )
        .await
    }

    /// Asks for a connect link with an API key; returns the authorize URL.
    pub async fn connect_link_for(&self, api_key: &str) -> String {
        let reply = self
            .send("POST", "/stripe/connect", Some(api_key), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}: {}",
            self.name,
            reply.text()
        );
        reply.json()["authorize_url"]
            .as_str()
            .expect("authorize_url")
            .to_owned()
    }

    pub async fn connect_link(&self) -> String {
        self.connect_link_for(&self.api_key).await
    }

    /// Opens the emulator's consent page and submits a decision, as a browser would. Returns the
    /// query string of the redirect back to the callback.
    pub async fn decide(
        &self,
        authorize_url: &str,
        decision: &str,
        account: Option<&str>,
    ) -> String {
        let page = self
            .http
            .get(authorize_url)
            .send()
            .await
            .expect("authorize page loads");
        assert_eq!(
            page.status(),
            reqwest::StatusCode::OK,
            "{}: consent page",
            self.name
        );

        let url = url::Url::parse(authorize_url).expect("authorize URL parses");
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("decision".into(), decision.into()));
        if let Some(account) = account {
            form.push(("stripe_user_account".into(), account.into()));
        }
        let response = self
            .http
            .post(format!(
                "{}/oauth/authorize/decision",
                self.emulator.base_url
            ))
            .form(&form)
            .send()
            .await
            .expect("decision posts");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::FOUND,
            "{}: decision redirects",
            self.name
        );
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .expect("redirect has a Location")
            .to_owned();
        assert!(
            location.starts_with(REDIRECT_URI),
            "{}: redirect goes to {location}",
            self.name
        );
        url::Url::parse(&location)
            .expect("Location parses")
            .query()
            .expect("redirect has a query")
            .to_owned()
    }

    /// Approves an authorize URL, connecting `account` (or a new account).
    pub async fn approve(&self, authorize_url: &str, account: Option<&str>) -> String {
        self.decide(authorize_url, "approve", account).await
    }

    /// Walks the whole flow for the first environment and returns the connected account.
    pub async fn connect(&self, account: &str) -> Reply {
        let link = self.connect_link().await;
        let query = self.approve(&link, Some(account)).await;
        self.callback(&query).await
    }

    /// Requests to the emulator's OAuth and API routes with this path, from its request log.
    pub async fn emulator_requests(&self, path: &str) -> Vec<Value> {
        let log: Value = self
            .http
            .get(format!("{}/_emulator/requests", self.emulator.base_url))
            .send()
            .await
            .expect("request log loads")
            .json()
            .await
            .expect("request log is JSON");
        log["requests"]
            .as_array()
            .expect("requests is a list")
            .iter()
            .filter(|request| request["path"] == path)
            .cloned()
            .collect()
    }

    /// Sends a control request to the emulator and returns its JSON response.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.emulator.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control request sends");
        assert!(
            response.status().is_success(),
            "{}: control {path}: {}",
            self.name,
            response.status()
        );
        response.json().await.expect("control answer is JSON")
    }

    pub async fn environment(&self, environment_id: &str) -> Environment {
        self.store
            .get_environment(environment_id)
            .await
            .expect("environment reads")
            .expect("environment exists")
    }

    /// Creates an organization linked to a new customer, with a set read under `connection_id`.
    pub async fn organization_with_set(
        &self,
        connection_id: &str,
        lookup_keys: &[&str],
    ) -> Organization {
        let now = Utc::now();
        let organization = Organization {
            id: ids::new_id("org"),
            environment_id: self.environment_id.clone(),
            name: "Acme".into(),
            external_id: None,
            metadata: Default::default(),
            domains: Vec::new(),
            stripe_customer_id: Some(ids::new_id("cus")),
            entitlements: Some(EntitlementSet {
                lookup_keys: lookup_keys.iter().map(|key| key.to_string()).collect(),
                read_at_ms: now.timestamp_millis(),
                connection_id: connection_id.to_owned(),
            }),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store
            .create_organization(&organization)
            .await
            .expect("organization is created");
        organization
    }

    pub async fn organization(&self, id: &str) -> Organization {
        self.store
            .get_organization(&self.environment_id, id)
            .await
            .expect("organization reads")
            .expect("organization exists")
    }

    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// Returns a new account ID for the emulator (`acct_` and letters and digits).
pub fn account_id() -> String {
    format!("acct_{}", ids::new_id("x").trim_start_matches("x_"))
}

/// Returns the `state` parameter of an authorize URL.
pub fn state_of(authorize_url: &str) -> String {
    url::Url::parse(authorize_url)
        .expect("authorize URL parses")
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .expect("authorize URL has a state")
}
