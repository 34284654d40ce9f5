//! The DynamoDB implementation of the store: one table, items under the keys of
//! [`super::keys`], condition expressions on every uniqueness rule and state transition.

mod environments;
mod idempotency;
mod oauth;
mod organizations;
mod recorder;
mod sessions;
mod stripe;
mod users;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::keys::{PK, SK};
use super::{StoreError, StoreResult};

pub use recorder::{RecordedRequest, RequestRecorder, round_trips};

/// A DynamoDB item as the SDK represents it.
pub type Item = HashMap<String, AttributeValue>;

/// The store on a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Wraps a client; nothing is sent until the first request.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Builds a client from the environment's AWS configuration, with an optional endpoint such as
    /// DynamoDB Local, and an optional recorder that sees every request.
    pub async fn connect(
        table: impl Into<String>,
        endpoint: Option<&str>,
        recorder: Option<RequestRecorder>,
    ) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            // A local endpoint such as DynamoDB Local accepts any credentials. Giving region and
            // credentials here keeps the SDK from asking the instance metadata service for them.
            loader = loader.endpoint_url(endpoint);
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                loader = loader.region(aws_config::Region::new("us-east-1"));
            }
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "local-endpoint",
                ));
            }
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
        if let Some(recorder) = recorder {
            builder = builder.interceptor(recorder);
        }
        DynamoStore::new(Client::from_conf(builder.build()), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A transaction step that creates `item`, failing when an item with its key exists.
    fn put_new(&self, item: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Reads one item with a strongly consistent read.
    async fn get_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, string(pk))
            .key(SK, string(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.item)
    }
}

/// A string attribute value.
pub(crate) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub(crate) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Serializes a record into an item under the given keys.
pub(crate) fn to_item<T: Serialize>(pk: &str, sk: &str, record: &T) -> StoreResult<Item> {
    let mut item: Item = dynamo_serde::to_item(record).map_err(|error| StoreError::Corrupt {
        key: format!("{pk}/{sk}"),
        reason: error.to_string(),
    })?;
    item.insert(PK.into(), string(pk));
    item.insert(SK.into(), string(sk));
    Ok(item)
}

/// Deserializes a record from an item; the key attributes are ignored.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    let key = item_key(&item);
    dynamo_serde::from_item(item).map_err(|error| StoreError::Corrupt {
        key,
        reason: error.to_string(),
    })
}

/// Returns a string attribute of an item.
pub(crate) fn string_attribute(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|value| value.as_s().ok()).cloned()
}

fn item_key(item: &Item) -> String {
    format!(
        "{}/{}",
        string_attribute(item, PK).unwrap_or_default(),
        string_attribute(item, SK).unwrap_or_default()
    )
}

/// Wraps an SDK error, keeping the service error as the source.
pub(crate) fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(error)
}

/// The cancellation reasons of a failed `TransactWriteItems`, or `None` for any other failure.
pub(crate) fn cancellation_reasons<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<&[CancellationReason]> {
    match error.as_service_error()? {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
            cancelled,
        ) => Some(cancelled.cancellation_reasons()),
        _ => None,
    }
}

/// Whether the reason is a failed condition (as opposed to a conflict with another transaction).
pub(crate) fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}
