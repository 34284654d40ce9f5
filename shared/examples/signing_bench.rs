//! Measures the time to sign one access token, to compare the signing paths.
//!
//! Run with `cargo run --release -p shared --example signing_bench`. Every case signs the same
//! claims: after a warm-up, each signature is timed on its own and the table reports mean, p50
//! and p99 in microseconds. Before timing, one token of each case is verified, so the numbers
//! belong to signatures that check out.

use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::json;
use shared::tokens::{
    AccessTokenClaims, KeyEncryptionKey, Signer, SigningKeyStatus, generate_signing_key, jwks,
};

const WARM_UP: usize = 200;
const ITERATIONS: usize = 2_000;
/// Fewer rounds for the cold case, because each one decrypts and parses a key.
const COLD_ITERATIONS: usize = 200;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Summary {
    name: &'static str,
    samples: usize,
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

fn summarize(name: &'static str, mut durations: Vec<Duration>) -> Summary {
    durations.sort_unstable();
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    let total: f64 = durations.iter().copied().map(micros).sum();
    let percentile = |fraction: f64| {
        let index = ((durations.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
        micros(durations[index.min(durations.len() - 1)])
    };
    Summary {
        name,
        samples: durations.len(),
        mean_us: total / durations.len() as f64,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
    }
}

/// Runs `sign` `WARM_UP` times untimed, then `iterations` times timed one by one.
fn measure(
    name: &'static str,
    iterations: usize,
    mut sign: impl FnMut() -> BenchResult<String>,
) -> BenchResult<Summary> {
    for _ in 0..WARM_UP {
        std::hint::black_box(sign()?);
    }
    let mut durations = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let token = sign()?;
        durations.push(start.elapsed());
        std::hint::black_box(token);
    }
    Ok(summarize(name, durations))
}

fn sample_claims() -> AccessTokenClaims {
    let now = chrono::Utc::now().timestamp();
    AccessTokenClaims {
        iss: "https://auth.example.test".to_owned(),
        sub: "user_01JBENCHUSER00000000000000".to_owned(),
        sid: "session_01JBENCHSESSION000000000000".to_owned(),
        jti: "01JBENCHJTI0000000000000000".to_owned(),
        iat: now,
        exp: now + 300,
        auth_time: now,
        org_id: Some("org_01JBENCHORG00000000000000".to_owned()),
        role: Some("member".to_owned()),
        roles: Some(vec!["member".to_owned()]),
        permissions: Some(vec!["billing:read".to_owned()]),
        entitlements: Some(vec!["audit-logs".to_owned(), "sso".to_owned()]),
    }
}

fn pkcs8_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

fn rs256_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation
}

fn bench_signer(claims: &AccessTokenClaims) -> BenchResult<Vec<Summary>> {
    let kek = KeyEncryptionKey::generate();
    let key = generate_signing_key(&kek, SigningKeyStatus::Active)?;
    let signer = Signer::new(kek.clone());

    let document = jwks(std::slice::from_ref(&key));
    let decoding_key = DecodingKey::from_rsa_components(
        document["keys"][0]["n"].as_str().unwrap_or_default(),
        document["keys"][0]["e"].as_str().unwrap_or_default(),
    )?;
    jsonwebtoken::decode::<AccessTokenClaims>(
        signer.sign(&key, claims)?,
        &decoding_key,
        &rs256_validation(),
    )?;

    let cached = measure("`Signer::sign` RS256, cached key pair", ITERATIONS, || {
        Ok(signer.sign(&key, claims)?)
    })?;
    let cold = measure(
        "`Signer::sign` RS256, empty cache (decrypt + parse + sign)",
        COLD_ITERATIONS,
        || Ok(Signer::new(kek.clone()).sign(&key, claims)?),
    )?;
    Ok(vec![cached, cold])
}

fn bench_jsonwebtoken(claims: &AccessTokenClaims) -> BenchResult<Summary> {
    let key_pair = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let pem = pkcs8_pem(key_pair.as_der()?.as_ref());
    let encoding_key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("key_bench".to_owned());

    let public_key = PublicKeyComponents::<Vec<u8>>::from(key_pair.public_key());
    let decoding_key = DecodingKey::from_rsa_raw_components(&public_key.n, &public_key.e);
    jsonwebtoken::decode::<AccessTokenClaims>(
        jsonwebtoken::encode(&header, claims, &encoding_key)?,
        &decoding_key,
        &rs256_validation(),
    )?;

    measure(
        "`jsonwebtoken::encode` RS256 from a PKCS#8 PEM key",
        ITERATIONS,
        || Ok(jsonwebtoken::encode(&header, claims, &encoding_key)?),
    )
}

fn sign_es256(
    key_pair: &EcdsaKeyPair,
    rng: &SystemRandom,
    header_b64: &str,
    claims: &AccessTokenClaims,
) -> BenchResult<String> {
    let mut token = String::from(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);
    let signature = key_pair.sign(rng, token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
    Ok(token)
}

fn bench_es256(claims: &AccessTokenClaims) -> BenchResult<Summary> {
    let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
    let rng = SystemRandom::new();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "key_bench"});
    let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);

    let token = sign_es256(&key_pair, &rng, &header_b64, claims)?;
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or("token has no signature")?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key_pair.public_key().as_ref())
        .verify(
            signing_input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature_b64)?,
        )
        .map_err(|_| "ES256 signature failed to verify")?;

    measure(
        "ES256 with aws-lc-rs (`ECDSA_P256_SHA256_FIXED_SIGNING`)",
        ITERATIONS,
        || sign_es256(&key_pair, &rng, &header_b64, claims),
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn main() -> BenchResult<()> {
    let claims = sample_claims();
    let mut summaries = bench_signer(&claims)?;
    summaries.push(bench_jsonwebtoken(&claims)?);
    summaries.push(bench_es256(&claims)?);

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "Access-token signing, one thread, {cores} cores available, {}\n",
        cpu_model()
    );
    println!("| Case | Samples | Mean µs | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|");
    for summary in &summaries {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            summary.name, summary.samples, summary.mean_us, summary.p50_us, summary.p99_us
        );
    }
    Ok(())
}
