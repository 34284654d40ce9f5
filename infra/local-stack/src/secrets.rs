//! Secrets of the local stack, generated on first start and kept in the data folder, so a developer
//! runs the product without configuring anything and a restart keeps sessions valid.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shared::ids;

/// The generated values; each is used only when its environment variable is unset.
#[derive(Serialize, Deserialize)]
pub struct LocalSecrets {
    /// Base64 of 32 random bytes, as `KEY_ENCRYPTION_KEY` expects.
    pub key_encryption_key: String,
    /// 43 random characters, as `COOKIE_PASSWORD` expects (at least 32).
    pub cookie_password: String,
    /// The webhook signing secret (`whsec_…`) that the built-in Stripe emulator signs events with.
    #[serde(default = "new_webhook_secret")]
    pub webhook_secret: String,
}

fn new_webhook_secret() -> String {
    ids::new_secret("whsec_")
}

const FILE_NAME: &str = "local-secrets.json";

/// Reads the secrets file of `data_dir`, creating it with new random values when missing.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<LocalSecrets> {
    let path = data_dir.join(FILE_NAME);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid; delete it to start over", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let secrets = LocalSecrets {
        key_encryption_key: base64_32_bytes(),
        cookie_password: ids::new_secret(""),
        webhook_secret: new_webhook_secret(),
    };
    write_private(&path, &serde_json::to_vec_pretty(&secrets)?)?;
    Ok(secrets)
}

fn base64_32_bytes() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}
