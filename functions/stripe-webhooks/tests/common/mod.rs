//! Test stack of the webhook route. The router runs on a store: the embedded one always, and
//! DynamoDB when `DYNAMODB_ENDPOINT` names one. A Stripe emulator on 127.0.0.1 is the Stripe API.
//! Helpers build signed events with the emulator and deliver them with `oneshot`.
//!
//! Optionally the Stripe client talks to the emulator through a loopback proxy that can hold a
//! response after the emulator produced it, so a test can make one delivery's Stripe read older
//! than another's.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::config::Config;
use shared::connect::OAuthClient;
use shared::state::AppState;
use shared::store::dynamo::RequestRecorder;
use shared::store::{
    AccountConnection, ConnectOutcome, DynamoStore, EmbeddedStore, Organization, Store,
    StripeConnection, StripeMode,
};
use stripe_emulator::{EmulatorConfig, RunningEmulator};
use tokio::sync::oneshot;
use tower::ServiceExt;

/// The secret the emulator signs events with; configured second, as after a rotation.
pub const WEBHOOK_SECRET: &str = "whsec_test_current";
/// Another configured secret, as the old secret during a rotation.
pub const PREVIOUS_SECRET: &str = "whsec_test_previous";
/// The emulator's platform key.
pub const PLATFORM_KEY: &str = "sk_test_emulator";
pub const LIST_PATH: &str = "/v1/entitlements/active_entitlements";
pub const SUMMARY_UPDATED: &str = "entitlements.active_entitlement_summary.updated";

/// Returns the stores of this run: the embedded store, and DynamoDB when `DYNAMODB_ENDPOINT` is
/// set. With `REQUIRE_DYNAMODB=1` a missing endpoint is a failure.
pub fn backends() -> Vec<&'static str> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    if endpoint.is_none() && std::env::var("REQUIRE_DYNAMODB").as_deref() == Ok("1") {
        panic!("REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set");
    }
    match endpoint {
        Some(_) => vec!["embedded", "dynamodb"],
        None => {
            eprintln!("DYNAMODB_ENDPOINT is not set: running on the embedded store only");
            vec!["embedded"]
        }
    }
}

/// A held Stripe response: `reached` fires when the emulator responded, and the proxy returns
/// the response once `release` is sent (or dropped).
pub struct Hold {
    pub reached: oneshot::Receiver<()>,
    pub release: oneshot::Sender<()>,
}

/// The proxy's side of a [`Hold`]: it signals `reached`, then waits for the release.
type PendingHold = (oneshot::Sender<()>, oneshot::Receiver<()>);

/// A loopback proxy in front of the emulator.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    pending_holds: Arc<Mutex<VecDeque<PendingHold>>>,
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .expect("proxy reads the body")
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|value| value.as_str())
        .unwrap_or("/");
    let mut outgoing = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = outgoing
        .body(bytes)
        .send()
        .await
        .expect("proxy reaches the emulator");
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let body = upstream
        .bytes()
        .await
        .expect("proxy reads the emulator's body");

    let hold = proxy.pending_holds.lock().unwrap().pop_front();
    if let Some((reached, release)) = hold {
        let _ = reached.send(());
        let _ = release.await;
    }

    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(body))
        .expect("proxy builds the response")
}

/// The route under test with its store, emulator and Stripe proxy.
pub struct Stack {
    pub backend: &'static str,
    pub state: AppState,
    pub router: Router,
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
    /// The DynamoDB store and its request recorder, on the DynamoDB backend.
    pub dynamo: Option<(DynamoStore, RequestRecorder)>,
    proxy: Proxy,
    proxy_task: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.proxy_task.abort();
    }
}

impl Stack {
    /// Starts an emulator and a proxy on 127.0.0.1 and builds the router on `backend`.
    pub async fn start(backend: &'static str) -> Stack {
        let emulator = stripe_emulator::start(EmulatorConfig::default(), 0)
            .await
            .expect("start the Stripe emulator");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("build the HTTP client");
        let proxy = Proxy {
            upstream: emulator.base_url.clone(),
            http: http.clone(),
            pending_holds: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let proxy_url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let app = Router::new().fallback(forward).with_state(proxy.clone());
        let proxy_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let (store, dynamo): (Arc<dyn Store>, _) = match backend {
            "dynamodb" => {
                let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT");
                let table = std::env::var("TABLE_NAME")
                    .unwrap_or_else(|_| shared::config::DEFAULT_TABLE_NAME.into());
                let recorder = RequestRecorder::new();
                let store =
                    DynamoStore::connect(table, Some(&endpoint), Some(recorder.clone())).await;
                (Arc::new(store.clone()), Some((store, recorder)))
            }
            _ => (Arc::new(EmbeddedStore::in_memory()), None),
        };
        // The Connect settings let `disconnect` deauthorize accounts on the emulator.
        let variables = [
            ("STRIPE_SECRET_KEY", PLATFORM_KEY.to_owned()),
            ("STRIPE_API_BASE", proxy_url),
            ("STRIPE_CLIENT_ID", EmulatorConfig::default().client_id),
            ("STRIPE_CONNECT_BASE", format!("{}/", emulator.base_url)),
            (
                "STRIPE_WEBHOOK_SECRETS",
                format!("{PREVIOUS_SECRET},{WEBHOOK_SECRET}"),
            ),
        ];
        let config = Config::from_lookup(|name| {
            variables
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .expect("valid configuration");
        let state = AppState::new(store, config);
        assert!(state.stripe.is_some(), "the state has a Stripe client");
        let router = shared::http::with_common_layers(stripe_webhooks::router(state.clone()));
        Stack {
            backend,
            state,
            router,
            emulator,
            http,
            dynamo,
            proxy,
            proxy_task,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Holds the next Stripe response after the emulator produced it.
    pub fn hold_next_stripe_response(&self) -> Hold {
        let (reached_sender, reached) = oneshot::channel();
        let (release, release_receiver) = oneshot::channel();
        self.proxy
            .pending_holds
            .lock()
            .unwrap()
            .push_back((reached_sender, release_receiver));
        Hold { reached, release }
    }

    /// Calls the emulator's control API and returns its JSON response.
    pub async fn control(&self, method: http::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.emulator.base_url))
            .json(&body)
            .send()
            .await
            .expect("call the emulator's control API");
        let status = response.status();
        let body: Value = response.json().await.expect("control API returns JSON");
        assert!(
            status.is_success(),
            "control API {path} failed: {status} {body}"
        );
        body
    }

    /// Creates a connected account in the emulator.
    pub async fn create_account(&self, livemode: bool) -> String {
        let body = self
            .control(
                http::Method::POST,
                "/_emulator/accounts",
                json!({ "livemode": livemode }),
            )
            .await;
        body["id"].as_str().expect("account id").to_owned()
    }

    /// Returns whether the emulator still grants the platform access to an account.
    pub async fn emulator_connected(&self, account: &str) -> bool {
        let body = self
            .control(
                http::Method::GET,
                &format!("/_emulator/accounts/{account}"),
                Value::Null,
            )
            .await;
        body["connected"].as_bool().expect("connected flag")
    }

    /// Disconnects an environment as `DELETE /stripe/connection` does: deauthorizes the account
    /// on the emulator, ends the connection in the store and deletes its entitlement sets.
    pub async fn disconnect(&self, environment_id: &str) -> Value {
        let oauth = OAuthClient::new(self.state.config.stripe.connect_base.clone());
        shared::connect::connection::disconnect(&self.state, &oauth, environment_id)
            .await
            .expect("disconnect")
    }

    /// Replaces a customer's active entitlements in the emulator.
    pub async fn set_entitlements(&self, account: &str, customer: &str, lookup_keys: &[String]) {
        self.control(
            http::Method::PUT,
            &format!("/_emulator/accounts/{account}/customers/{customer}/entitlements"),
            json!({ "lookup_keys": lookup_keys }),
        )
        .await;
    }

    /// Makes the next `count` entitlement list requests fail with `status`.
    pub async fn fail_next_lists(&self, status: u16, count: u32) {
        self.control(
            http::Method::POST,
            "/_emulator/failures",
            json!({ "path_prefix": LIST_PATH, "status": status, "count": count }),
        )
        .await;
    }

    /// Returns the emulator's log of entitlement list requests.
    pub async fn list_requests(&self) -> Vec<Value> {
        let body = self
            .control(http::Method::GET, "/_emulator/requests", Value::Null)
            .await;
        body["requests"]
            .as_array()
            .expect("requests array")
            .iter()
            .filter(|request| request["path"] == LIST_PATH)
            .cloned()
            .collect()
    }

    /// Creates an environment in `mode` connected to a new emulator account.
    pub async fn connected_environment(&self, livemode: bool) -> AccountConnection {
        let mode = if livemode {
            StripeMode::Live
        } else {
            StripeMode::Test
        };
        let environment = shared::environments::create(self.store(), "webhooks", mode)
            .await
            .expect("create environment")
            .environment;
        let account = self.create_account(livemode).await;
        let connection = StripeConnection {
            account_id: account,
            livemode,
            scope: "read_write".into(),
            connected_at: chrono::Utc::now(),
            connection_id: shared::ids::new_id("conn"),
        };
        let outcome = self
            .store()
            .connect_stripe(&environment.id, &connection)
            .await
            .expect("connect");
        assert_eq!(outcome, ConnectOutcome::Connected { replaced: None });
        AccountConnection::of(&environment.id, &connection)
    }

    /// Creates an organization, linked to `customer` when given (the link writes the claim).
    pub async fn organization(&self, environment_id: &str, customer: Option<&str>) -> Organization {
        let now = chrono::Utc::now();
        let organization = Organization {
            id: shared::ids::new_id("org"),
            environment_id: environment_id.to_owned(),
            name: "Acme".into(),
            external_id: None,
            metadata: Default::default(),
            domains: Vec::new(),
            stripe_customer_id: customer.map(str::to_owned),
            entitlements: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store()
            .create_organization(&organization)
            .await
            .expect("create organization");
        organization
    }

    pub async fn reload(&self, organization: &Organization) -> Organization {
        self.store()
            .get_organization(&organization.environment_id, &organization.id)
            .await
            .expect("read organization")
            .expect("organization exists")
    }

    /// Builds and signs an event with the emulator, without delivering it. Returns the payload
    /// and the `Stripe-Signature` value.
    pub async fn event(&self, mut request: Value) -> (String, String) {
        request["secret"] = json!(WEBHOOK_SECRET);
        let body = self
            .control(http::Method::POST, "/_emulator/events", request)
            .await;
        (
            body["payload"].as_str().expect("payload").to_owned(),
            body["stripe_signature"]
                .as_str()
                .expect("signature")
                .to_owned(),
        )
    }

    /// Builds a signed `entitlements.active_entitlement_summary.updated` event of a customer.
    pub async fn summary_event(&self, account: &str, customer: &str) -> (String, String) {
        self.event(json!({ "type": SUMMARY_UPDATED, "account": account, "customer": customer }))
            .await
    }

    /// Delivers a body with an optional `Stripe-Signature` through the router.
    pub async fn deliver(&self, payload: impl Into<Body>, signature: Option<&str>) -> Delivery {
        let mut request = http::Request::post("/webhooks/stripe")
            .header("content-type", "application/json; charset=utf-8");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let request = request.body(payload.into()).expect("build request");
        Delivery::read(
            self.router
                .clone()
                .oneshot(request)
                .await
                .expect("router answers"),
        )
        .await
    }
}

/// The router's response to one delivery.
#[derive(Debug)]
pub struct Delivery {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Delivery {
    pub async fn read(response: http::Response<Body>) -> Delivery {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Delivery {
            status,
            headers,
            body,
        }
    }

    /// `result` of a 200 body: `applied`, `duplicate` or `ignored`.
    pub fn result(&self) -> &str {
        self.body["result"].as_str().unwrap_or("")
    }

    /// `reason` of an `ignored` body.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
}

/// `count` lookup keys `feature_00`, `feature_01`, … (sorted as stored).
pub fn lookup_keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("feature_{index:03}"))
        .collect()
}

pub fn customer_id() -> String {
    format!("cus_{}", shared::ids::new_id("t").trim_start_matches("t_"))
}
