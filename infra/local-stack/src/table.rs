//! Creates the DynamoDB table from the `Table` resource of `template.yaml`, so tests and the local
//! stack run on exactly the key schema and TTL that a deployment gets.

use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_yaml::Value;

/// The SAM template, compiled in so the binary needs no file at run time.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The parts of the table resource that DynamoDB Local needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
}

/// Reads the `Table` resource of a SAM or CloudFormation template.
pub fn parse_table_definition(template: &str) -> anyhow::Result<TableDefinition> {
    let root: Value = serde_yaml::from_str(template).context("template.yaml is not valid YAML")?;
    let properties = root
        .get("Resources")
        .and_then(|resources| resources.get("Table"))
        .and_then(|table| table.get("Properties"))
        .context("template.yaml has no Resources.Table.Properties")?;

    let pairs = |list: &str, first: &str, second: &str| -> anyhow::Result<Vec<(String, String)>> {
        let entries = properties
            .get(list)
            .and_then(Value::as_sequence)
            .with_context(|| format!("Table.Properties.{list} is missing"))?;
        entries
            .iter()
            .map(|entry| {
                let field = |name: &str| {
                    entry
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .with_context(|| format!("an entry of {list} has no {name}"))
                };
                Ok((field(first)?, field(second)?))
            })
            .collect()
    };

    let ttl_attribute = properties
        .get("TimeToLiveSpecification")
        .filter(|spec| spec.get("Enabled").and_then(Value::as_bool) == Some(true))
        .and_then(|spec| spec.get("AttributeName"))
        .and_then(Value::as_str)
        .map(str::to_owned);

    Ok(TableDefinition {
        attributes: pairs("AttributeDefinitions", "AttributeName", "AttributeType")?,
        key_schema: pairs("KeySchema", "AttributeName", "KeyType")?,
        ttl_attribute,
    })
}

/// Creates the table unless it exists, then enables its TTL. Returns `true` when it was created.
pub async fn ensure_table(
    client: &Client,
    table_name: &str,
    definition: &TableDefinition,
) -> anyhow::Result<bool> {
    let existing = client
        .list_tables()
        .send()
        .await
        .context("ListTables failed")?;
    if existing.table_names().iter().any(|name| name == table_name) {
        return Ok(false);
    }

    let mut request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in &definition.attributes {
        let kind = match kind.as_str() {
            "S" => ScalarAttributeType::S,
            "N" => ScalarAttributeType::N,
            "B" => ScalarAttributeType::B,
            other => bail!("attribute {name} has unsupported type {other}"),
        };
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()?,
        );
    }
    for (name, kind) in &definition.key_schema {
        let kind = match kind.as_str() {
            "HASH" => KeyType::Hash,
            "RANGE" => KeyType::Range,
            other => bail!("key {name} has unsupported type {other}"),
        };
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()?,
        );
    }
    request.send().await.context("CreateTable failed")?;

    if let Some(attribute) = &definition.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .context("UpdateTimeToLive failed")?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_defines_keys_and_ttl() {
        let definition = parse_table_definition(TEMPLATE).unwrap();
        assert_eq!(
            definition.key_schema,
            vec![
                ("pk".to_owned(), "HASH".to_owned()),
                ("sk".to_owned(), "RANGE".to_owned())
            ]
        );
        assert_eq!(
            definition.ttl_attribute.as_deref(),
            Some(shared::store::keys::TTL)
        );
        assert!(
            definition
                .attributes
                .contains(&("pk".to_owned(), "S".to_owned()))
        );
    }
}
