//! Lenient parsing of Stripe snapshot events: only the fields the service acts on are read, and
//! unknown fields, enum values and event types are never an error. Only `id` and `type` are
//! required of every event; the fields a handled type needs are required of that type alone.

use serde::Deserialize;
use serde_json::Value;

/// `entitlements.active_entitlement_summary.updated`: a customer's active entitlements changed.
pub const ENTITLEMENT_SUMMARY_UPDATED: &str = "entitlements.active_entitlement_summary.updated";
/// `account.application.deauthorized`: a connected account revoked the platform's access.
pub const ACCOUNT_APPLICATION_DEAUTHORIZED: &str = "account.application.deauthorized";
/// `customer.deleted`: a customer was deleted.
pub const CUSTOMER_DELETED: &str = "customer.deleted";

/// The longest ID the service accepts from an event, as Stripe caps idempotency keys.
const MAX_ID_LENGTH: usize = 255;

/// The action the service takes for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    /// Re-read the customer's entitlements from Stripe and store them.
    UpdateEntitlements { customer_id: String },
    /// End the account's connection and delete its entitlement data.
    DeauthorizeAccount,
    /// Unlink the organization linked to the deleted customer.
    UnlinkCustomer { customer_id: String },
    /// Acknowledge without acting: a type the service does not handle.
    Ignore,
}

/// The parts of an event the service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    /// The connected account the event comes from; `None` for the platform's own events.
    pub account: Option<String>,
    /// `None` only for event types the service ignores.
    pub livemode: Option<bool>,
    pub action: EventAction,
}

/// An event body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    #[error("the body is not a JSON event object: {0}")]
    NotAnEvent(String),
    #[error("the {event_type} event {event_id} has no valid {field}")]
    MissingField {
        event_id: String,
        event_type: String,
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    account: Option<Value>,
    #[serde(default)]
    livemode: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
}

/// Returns whether a value can be stored as an ID: non-empty, at most 255 characters, without
/// `#` (the key separator of the table) or control characters.
fn valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_LENGTH
        && value
            .chars()
            .all(|character| character != '#' && !character.is_control())
}

/// Reads an ID given as a string or as an expanded object with an `id`.
fn id_of(value: Option<&Value>) -> Option<String> {
    let id = match value? {
        Value::String(id) => id.as_str(),
        Value::Object(object) => object.get("id")?.as_str()?,
        _ => return None,
    };
    valid_id(id).then(|| id.to_owned())
}

/// Parses an event body.
pub fn parse(payload: &[u8]) -> Result<Event, EventParseError> {
    let envelope: Envelope = serde_json::from_slice(payload)
        .map_err(|error| EventParseError::NotAnEvent(error.to_string()))?;
    if !valid_id(&envelope.id) {
        return Err(EventParseError::NotAnEvent(
            "the event id is empty, longer than 255 characters or contains '#'".into(),
        ));
    }
    let missing = |field: &'static str| EventParseError::MissingField {
        event_id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        field,
    };
    let object = envelope.data.as_ref().and_then(|data| data.get("object"));

    let action = match envelope.event_type.as_str() {
        ENTITLEMENT_SUMMARY_UPDATED => EventAction::UpdateEntitlements {
            customer_id: id_of(object.and_then(|object| object.get("customer")))
                .ok_or_else(|| missing("data.object.customer"))?,
        },
        ACCOUNT_APPLICATION_DEAUTHORIZED => EventAction::DeauthorizeAccount,
        CUSTOMER_DELETED => EventAction::UnlinkCustomer {
            customer_id: id_of(object.and_then(|object| object.get("id")))
                .ok_or_else(|| missing("data.object.id"))?,
        },
        _ => EventAction::Ignore,
    };

    let livemode = envelope.livemode.as_ref().and_then(Value::as_bool);
    let account = match &envelope.account {
        None | Some(Value::Null) => None,
        Some(value) => match id_of(Some(value)) {
            Some(account) => Some(account),
            None if action == EventAction::Ignore => None,
            None => return Err(missing("account")),
        },
    };
    if action != EventAction::Ignore && livemode.is_none() {
        return Err(missing("livemode"));
    }
    Ok(Event {
        id: envelope.id,
        event_type: envelope.event_type,
        account,
        livemode,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_event_names_customer() {
        let payload = br#"{"id":"evt_1","object":"event","type":"entitlements.active_entitlement_summary.updated",
            "account":"acct_1","livemode":false,"new_field":{"x":1},
            "data":{"object":{"object":"entitlements.active_entitlement_summary","customer":"cus_1",
            "entitlements":{"object":"list","data":[],"has_more":false,"url":"/v1/x"}}}}"#;
        let event = parse(payload).unwrap();
        assert_eq!(event.account.as_deref(), Some("acct_1"));
        assert_eq!(event.livemode, Some(false));
        assert_eq!(
            event.action,
            EventAction::UpdateEntitlements {
                customer_id: "cus_1".into()
            }
        );
    }

    #[test]
    fn unknown_type_with_odd_shape_is_ignored() {
        let payload = br#"{"id":"evt_2","type":"v1.some.future_event","livemode":"maybe","account":5,"data":[1]}"#;
        let event =
            parse(payload).unwrap_or_else(|error| panic!("unknown types must parse: {error}"));
        assert_eq!(event.action, EventAction::Ignore);
    }

    #[test]
    fn expanded_customer_is_read() {
        let payload = br#"{"id":"evt_3","type":"entitlements.active_entitlement_summary.updated","livemode":true,
            "data":{"object":{"customer":{"id":"cus_9","object":"customer"}}}}"#;
        let event = parse(payload).unwrap();
        assert_eq!(
            event.action,
            EventAction::UpdateEntitlements {
                customer_id: "cus_9".into()
            }
        );
        assert_eq!(event.account, None);
    }

    #[test]
    fn handled_type_needs_its_fields() {
        let payload =
            br#"{"id":"evt_4","type":"customer.deleted","livemode":false,"data":{"object":{}}}"#;
        let error = parse(payload).unwrap_err();
        assert!(error.to_string().contains("data.object.id"), "{error}");
        let payload =
            br#"{"id":"evt_5","type":"account.application.deauthorized","data":{"object":{}}}"#;
        let error = parse(payload).unwrap_err();
        assert!(error.to_string().contains("livemode"), "{error}");
    }

    #[test]
    fn non_events_are_rejected() {
        assert!(matches!(
            parse(b"not json"),
            Err(EventParseError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse(br#"{"type":"x"}"#),
            Err(EventParseError::NotAnEvent(_))
        ));
        assert!(matches!(
            parse(br#"{"id":"a#b","type":"x"}"#),
            Err(EventParseError::NotAnEvent(_))
        ));
    }
}
