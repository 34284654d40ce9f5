//! Runs `admin create-environment` and `admin signing-keys …` on an embedded store in a temporary
//! data folder, and checks each command's JSON output and refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A data folder removed when the test ends.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data_dir(name: &str) -> DataDir {
    let path = std::env::temp_dir().join(format!("signing-keys-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    DataDir(path)
}

fn admin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_admin"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KEY_ENCRYPTION_KEY")
        .env_remove("DYNAMODB_ENDPOINT")
        .env("RUST_LOG", "error")
        .output()
        .expect("admin runs")
}

/// Runs a command that must succeed and returns its JSON output.
fn admin_json(data_dir: &Path, args: &[&str]) -> Value {
    let output = admin(data_dir, args);
    assert!(
        output.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Runs a command that must fail and returns its error output.
fn admin_error(data_dir: &Path, args: &[&str]) -> String {
    let output = admin(data_dir, args);
    assert!(
        !output.status.success(),
        "admin {args:?} succeeded unexpectedly"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn statuses(listing: &Value) -> Vec<(String, String)> {
    listing["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| {
            (
                key["kid"].as_str().expect("kid").to_owned(),
                key["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[test]
fn signing_key_rotation_commands() {
    let dir = data_dir("rotation");
    let created = admin_json(&dir.0, &["create-environment", "--name", "rotation"]);
    let environment = created["client_id"].as_str().expect("client_id").to_owned();

    let listing = admin_json(
        &dir.0,
        &["signing-keys", "list", "--environment", &environment],
    );
    let keys = statuses(&listing);
    assert_eq!(keys.len(), 1, "{listing}");
    assert_eq!(keys[0].1, "active");
    assert!(
        !listing.to_string().contains("encrypted"),
        "no private key material is printed"
    );
    let first = keys[0].0.clone();

    let added = admin_json(
        &dir.0,
        &["signing-keys", "add", "--environment", &environment],
    );
    let next = added["added"]["kid"].as_str().expect("kid").to_owned();
    assert_eq!(added["added"]["status"], "next");
    let error = admin_error(
        &dir.0,
        &["signing-keys", "add", "--environment", &environment],
    );
    assert!(error.contains("already has a Next key"), "{error}");

    let error = admin_error(
        &dir.0,
        &["signing-keys", "promote", "--environment", &environment],
    );
    assert!(
        error.contains("--force"),
        "a fresh Next key is not promoted: {error}"
    );
    let promoted = admin_json(
        &dir.0,
        &[
            "signing-keys",
            "promote",
            "--environment",
            &environment,
            "--force",
        ],
    );
    assert_eq!(promoted["active"]["kid"], next.as_str());
    assert_eq!(promoted["previous"]["kid"], first.as_str());

    let error = admin_error(
        &dir.0,
        &[
            "signing-keys",
            "retire",
            "--environment",
            &environment,
            "--kid",
            &first,
        ],
    );
    assert!(
        error.contains("--force"),
        "a recent Previous key is kept: {error}"
    );
    let error = admin_error(
        &dir.0,
        &[
            "signing-keys",
            "retire",
            "--environment",
            &environment,
            "--kid",
            &next,
            "--force",
        ],
    );
    assert!(
        error.contains("Active"),
        "the Active key is never retired: {error}"
    );
    let retired = admin_json(
        &dir.0,
        &[
            "signing-keys",
            "retire",
            "--environment",
            &environment,
            "--kid",
            &first,
            "--force",
        ],
    );
    assert_eq!(retired["retired"]["kid"], first.as_str());

    let listing = admin_json(
        &dir.0,
        &["signing-keys", "list", "--environment", &environment],
    );
    assert_eq!(statuses(&listing), vec![(next, "active".to_owned())]);

    let error = admin_error(
        &dir.0,
        &[
            "signing-keys",
            "list",
            "--environment",
            "client_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ],
    );
    assert!(error.contains("no environment"), "{error}");
}
