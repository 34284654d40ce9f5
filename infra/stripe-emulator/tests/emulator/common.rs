//! Test harness: an emulator on a free loopback port plus helpers for the
//! control API, the entitlements list and fixture key sets.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use stripe_emulator::{EmulatorConfig, RunningEmulator};

/// Platform key of [`EmulatorConfig::default`].
pub const KEY: &str = "sk_test_emulator";
/// Client id of [`EmulatorConfig::default`].
pub const CLIENT_ID: &str = "ca_emulator";
pub const LIST_PATH: &str = "/v1/entitlements/active_entitlements";

/// Response status, headers and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub struct Harness {
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    pub async fn start_with(config: EmulatorConfig) -> Self {
        let emulator = stripe_emulator::start(config, 0)
            .await
            .expect("starting the emulator");
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building the HTTP client");
        Self { emulator, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url)
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.expect("control request")).await
    }

    /// Creates a connected account and returns its id.
    pub async fn create_account(&self) -> String {
        let reply = self
            .control(
                reqwest::Method::POST,
                "/_emulator/accounts",
                Some(json!({})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["id"].as_str().expect("account id").to_owned()
    }

    /// Replaces a customer's entitlements and returns the entitlement ids in order.
    pub async fn set_entitlements(
        &self,
        account: &str,
        customer: &str,
        keys: &[String],
    ) -> Vec<String> {
        let reply = self
            .control(
                reqwest::Method::PUT,
                &format!("/_emulator/accounts/{account}/customers/{customer}/entitlements"),
                Some(json!({ "lookup_keys": keys })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["entitlements"]
            .as_array()
            .expect("entitlements array")
            .iter()
            .map(|entitlement| entitlement["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Calls the entitlements list with the platform key.
    pub async fn list(&self, account: Option<&str>, query: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .get(self.url(LIST_PATH))
            .bearer_auth(KEY)
            .query(query);
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        Reply::read(request.send().await.expect("list request")).await
    }

    pub async fn requests(&self) -> Vec<Value> {
        let reply = self
            .control(reqwest::Method::GET, "/_emulator/requests", None)
            .await;
        reply.body["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// Returns `count` lookup keys `feature_00`, `feature_01`, ….
pub fn lookup_keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("feature_{index:02}"))
        .collect()
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Top-level keys of a JSON object.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

/// Asserts a Stripe API error: status, `type`, `code`, `param` and the
/// presence of `message`, `request_log_url` and, with a code, `doc_url`.
pub fn assert_api_error(
    reply: &Reply,
    status: StatusCode,
    error_type: &str,
    code: Option<&str>,
    param: Option<&str>,
) {
    let error = &reply.body["error"];
    assert_eq!(reply.status, status, "status of {}", reply.body);
    assert_eq!(error["type"], error_type, "type of {}", reply.body);
    assert_eq!(error["code"].as_str(), code, "code of {}", reply.body);
    assert_eq!(error["param"].as_str(), param, "param of {}", reply.body);
    assert!(error["message"].is_string(), "message of {}", reply.body);
    assert_eq!(
        error["doc_url"].is_string(),
        code.is_some(),
        "doc_url of {}",
        reply.body
    );
    let request_id = reply.header("request-id").unwrap_or_default();
    assert!(request_id.starts_with("req_"), "Request-Id {request_id:?}");
    assert!(
        error["request_log_url"]
            .as_str()
            .is_some_and(|url| url.contains(request_id)),
        "request_log_url of {} should name {request_id}",
        reply.body
    );
}
