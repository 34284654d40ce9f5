//! Field rules of the WorkOS API, each failure a 422 that names the field.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// Maximum length of an organization name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Maximum length of an external ID, in ASCII characters (WorkOS's `UpdateOrganizationDto`).
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// Maximum number of metadata entries, and of characters in a key and in a value.
pub const MAX_METADATA_ENTRIES: usize = 50;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 600;
/// Maximum length of a Stripe customer ID; Stripe IDs are far shorter.
pub const MAX_STRIPE_ID_CHARS: usize = 255;

/// Checks a name: not blank, at most [`MAX_NAME_CHARS`] characters. Returns it trimmed.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            &format!("{field}_required"),
            format!("{field} must not be empty."),
        ));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(
            field,
            &format!("{field}_too_long"),
            format!("{field} must be at most {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks an external ID: 1 to [`MAX_EXTERNAL_ID_CHARS`] printable ASCII characters.
pub fn external_id(value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_EXTERNAL_ID_CHARS {
        return Err(ApiError::invalid_field(
            "external_id",
            "external_id_invalid_length",
            format!("external_id must be 1 to {MAX_EXTERNAL_ID_CHARS} characters."),
        ));
    }
    if !value
        .bytes()
        .all(|byte| byte.is_ascii_graphic() || byte == b' ')
    {
        return Err(ApiError::invalid_field(
            "external_id",
            "external_id_invalid_characters",
            "external_id must contain only printable ASCII characters.",
        ));
    }
    Ok(())
}

/// Checks metadata against the entry count and key and value lengths.
pub fn metadata(value: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if value.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::invalid_field(
            "metadata",
            "metadata_too_many_keys",
            format!("metadata must have at most {MAX_METADATA_ENTRIES} keys."),
        ));
    }
    for (key, entry) in value {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(ApiError::invalid_field(
                &format!("metadata.{key}"),
                "metadata_key_invalid_length",
                format!("metadata keys must be 1 to {MAX_METADATA_KEY_CHARS} characters."),
            ));
        }
        if entry.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(ApiError::invalid_field(
                &format!("metadata.{key}"),
                "metadata_value_too_long",
                format!("metadata values must be at most {MAX_METADATA_VALUE_CHARS} characters."),
            ));
        }
    }
    Ok(())
}

/// Checks a Stripe customer ID: `cus_` followed by letters and digits.
pub fn stripe_customer_id(value: &str) -> Result<(), ApiError> {
    let valid = value.len() <= MAX_STRIPE_ID_CHARS
        && value.strip_prefix("cus_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_alphanumeric())
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "stripe_customer_id",
            "stripe_customer_id_invalid",
            "stripe_customer_id must be a Stripe customer ID such as 'cus_NffrFeUfNV2Hib', or null to unlink.",
        ))
    }
}

/// Checks a domain name: labels of letters, digits and hyphens, at least two labels.
pub fn domain(field: &str, value: &str) -> Result<String, ApiError> {
    let lower = value.trim().to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    let valid = lower.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    if valid {
        Ok(lower)
    } else {
        Err(ApiError::invalid_field(
            field,
            "domain_invalid",
            format!("{field} must be a domain name such as 'example.com'."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rejects_blank_and_long() {
        assert!(name("name", "  ").is_err());
        assert!(name("name", &"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert_eq!(name("name", " Acme ").unwrap(), "Acme");
    }

    #[test]
    fn external_id_limits() {
        assert!(external_id("").is_err());
        assert!(external_id(&"x".repeat(MAX_EXTERNAL_ID_CHARS + 1)).is_err());
        assert!(external_id("caf\u{e9}").is_err());
        assert!(external_id("tenant-42").is_ok());
    }

    #[test]
    fn metadata_limits() {
        let many: BTreeMap<String, String> = (0..=MAX_METADATA_ENTRIES)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        assert!(metadata(&many).is_err());
        let long_key = BTreeMap::from([("k".repeat(MAX_METADATA_KEY_CHARS + 1), "v".to_owned())]);
        assert!(metadata(&long_key).is_err());
        let long_value =
            BTreeMap::from([("k".to_owned(), "v".repeat(MAX_METADATA_VALUE_CHARS + 1))]);
        assert!(metadata(&long_value).is_err());
    }

    #[test]
    fn stripe_customer_id_format() {
        assert!(stripe_customer_id("cus_NffrFeUfNV2Hib").is_ok());
        assert!(stripe_customer_id("cus_").is_err());
        assert!(stripe_customer_id("acct_123").is_err());
        assert!(stripe_customer_id("cus_12 3").is_err());
    }

    #[test]
    fn domain_format() {
        assert_eq!(domain("domain", "Example.COM").unwrap(), "example.com");
        assert!(domain("domain", "localhost").is_err());
        assert!(domain("domain", "-bad.com").is_err());
    }
}
