//! Drives the sessions router with the official `@workos-inc/node` SDK and checks the
//! `entitlements` claim it reports. The router serves on 127.0.0.1; the entitlement sets are
//! written to the store directly (a connected environment, a linked organization), so this test
//! needs neither Stripe nor the emulator. Node.js and `npm ci --prefix tests/node` are required.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{COOKIE_PASSWORD, Harness, Options, PASSWORD, embedded};
use serde_json::{Value, json};

/// Signs in with `authenticateWithPassword` (sealing the session) and reads it back with
/// `loadSealedSession(...).authenticate()`, which verifies the token through the JWKS URL.
const SIGN_IN: &str = r#"
import { WorkOS } from '@workos-inc/node';
const input = JSON.parse(process.env.SDK_INPUT);
const workos = new WorkOS(input.apiKey, {
  apiHostname: '127.0.0.1', port: input.port, https: false, clientId: input.clientId, maxRetries: 0,
});
const signedIn = await workos.userManagement.authenticateWithPassword({
  email: input.email, password: input.password,
  session: { sealSession: true, cookiePassword: input.cookiePassword },
});
const authenticated = await workos.userManagement
  .loadSealedSession({ sessionData: signedIn.sealedSession, cookiePassword: input.cookiePassword })
  .authenticate();
console.log(JSON.stringify({ sealedSession: signedIn.sealedSession, authenticated }));
"#;

/// Refreshes a sealed session with `CookieSession.refresh()`, then sends the new cookie to the
/// cookie route and reads the cookie that route sets with `authenticate()`.
const REFRESH: &str = r#"
import { WorkOS } from '@workos-inc/node';
const input = JSON.parse(process.env.SDK_INPUT);
const workos = new WorkOS(input.apiKey, {
  apiHostname: '127.0.0.1', port: input.port, https: false, clientId: input.clientId, maxRetries: 0,
});
const session = workos.userManagement.loadSealedSession({
  sessionData: input.sealedSession, cookiePassword: input.cookiePassword,
});
const refreshed = await session.refresh();
const response = await fetch(`http://127.0.0.1:${input.port}/api/entitlements`, {
  headers: { Cookie: `wos-session=${refreshed.sealedSession}` },
});
const routeBody = await response.json();
const setCookie = response.headers.get('set-cookie') ?? '';
const routeCookie = setCookie.slice('wos-session='.length, setCookie.indexOf(';'));
const fromRoute = await workos.userManagement
  .loadSealedSession({ sessionData: routeCookie, cookiePassword: input.cookiePassword })
  .authenticate();
console.log(JSON.stringify({
  refreshed: { authenticated: refreshed.authenticated, entitlements: refreshed.entitlements, reason: refreshed.reason },
  routeStatus: response.status,
  routeBody,
  fromRoute: { authenticated: fromRoute.authenticated, entitlements: fromRoute.entitlements },
}));
"#;

fn node_project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node")
}

/// Runs an ES module with the SDK, `input` in `SDK_INPUT`, and parses the JSON it prints.
async fn run_sdk(script: &str, input: &Value) -> Value {
    let project = node_project_dir();
    let sdk = project.join("node_modules/@workos-inc/node/package.json");
    assert!(
        sdk.is_file(),
        "the WorkOS Node SDK is not installed at {}; run `npm ci --prefix tests/node`",
        sdk.display()
    );
    // With --eval, ES module imports resolve from the working folder, so the SDK is found there.
    let run = tokio::process::Command::new("node")
        .args(["--input-type=module", "--eval", script])
        .current_dir(&project)
        .env("SDK_INPUT", input.to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("node finished within 60 s")
        .unwrap_or_else(|error| panic!("failed to start `node` (is Node.js installed?): {error}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node failed with {}: {stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("invalid JSON from node ({error}); stderr: {stderr}"))
}

/// Serves the harness's router on 127.0.0.1 and returns the port; the server stops with the test.
async fn serve(harness: &Harness) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let router = harness.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reads_entitlements_claim() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("sdk@example.com").await;
    let organization = harness.create_organization("Acme").await;
    harness.add_membership(&user_id, &organization.id).await;
    harness
        .set_entitlements(&organization.id, Some(&["sso", "audit-logs"]))
        .await;
    let port = serve(&harness).await;
    let input = json!({
        "apiKey": harness.api_key,
        "clientId": harness.environment_id,
        "port": port,
        "email": "sdk@example.com",
        "password": PASSWORD,
        "cookiePassword": COOKIE_PASSWORD,
    });

    let signed_in = run_sdk(SIGN_IN, &input).await;
    let authenticated = &signed_in["authenticated"];
    assert_eq!(authenticated["authenticated"], true, "{signed_in}");
    assert_eq!(authenticated["organizationId"], organization.id.as_str());
    assert_eq!(authenticated["entitlements"], json!(["audit-logs", "sso"]));

    harness
        .set_entitlements(&organization.id, Some(&["seats"]))
        .await;
    let mut refresh_input = input.clone();
    refresh_input["sealedSession"] = signed_in["sealedSession"].clone();
    let refreshed = run_sdk(REFRESH, &refresh_input).await;
    assert_eq!(refreshed["refreshed"]["authenticated"], true, "{refreshed}");
    assert_eq!(
        refreshed["refreshed"]["entitlements"],
        json!(["seats"]),
        "read at issue time"
    );
    assert_eq!(refreshed["routeStatus"], 200, "{refreshed}");
    assert_eq!(refreshed["routeBody"], json!({ "entitlements": ["seats"] }));
    assert_eq!(refreshed["fromRoute"]["authenticated"], true, "{refreshed}");
    assert_eq!(refreshed["fromRoute"]["entitlements"], json!(["seats"]));

    harness.set_entitlements(&organization.id, None).await;
    let mut unlinked_input = input;
    unlinked_input["sealedSession"] = signed_in["sealedSession"].clone();
    let signed_in_again = run_sdk(SIGN_IN, &unlinked_input).await;
    assert_eq!(signed_in_again["authenticated"]["authenticated"], true);
    assert!(
        signed_in_again["authenticated"]
            .get("entitlements")
            .is_none(),
        "an unlinked organization's token has no claim: {signed_in_again}"
    );
}
