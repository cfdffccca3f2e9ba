//! REST produce payloads, given as text, encoded as Pulsar's schemas serialize values, so that a
//! consumer of any surface decodes them with the topic's schema (Pulsar's REST producer does the
//! same): numbers big-endian, JSON compacted, Avro from its JSON encoding to its binary one.
//! Also the `SchemaInfo` JSON a REST request names its schema with.

mod avro;
mod key_value;

pub use key_value::{KeyValueEncoding, key_value_schema, key_value_sides};

use crate::schemas::{SCHEMA_TYPES, SchemaPayload};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;

/// A REST request's `valueSchema`: Pulsar's `SchemaInfo` as JSON (`type`, `schema`, `properties`;
/// `name` is ignored). `schema` is the definition: as Pulsar's own JSON writes it (base64 of its
/// bytes), as text, or as a JSON document. `None` for `BYTES` and `NONE`, which Pulsar does not
/// register (the payloads are the bytes, here given in base64).
pub fn parse_schema_info(text: &str) -> Result<Option<SchemaPayload>, String> {
    let side = parse_side("valueSchema", text)?;
    Ok((!is_bytes(&side.payload)).then_some(side.payload))
}

/// One side of a schema as a REST request gives it: its `SchemaInfo`, and its name (a KEY_VALUE
/// schema records its sides' names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSide {
    pub name: String,
    pub payload: SchemaPayload,
}

/// `text`, the request's field `field`, as a [`SchemaSide`] (`BYTES` and `NONE` included).
pub fn parse_side(field: &str, text: &str) -> Result<SchemaSide, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{field} is not a SchemaInfo JSON document: {e}"))?;
    let kind = v.get("type").and_then(Value::as_str).ok_or(format!("{field} has no `type`"))?.to_ascii_uppercase();
    if !SCHEMA_TYPES.contains(&kind.as_str()) || matches!(kind.as_str(), "AUTO_CONSUME" | "AUTO_PUBLISH") {
        return Err(format!("{field} type `{kind}` is not a schema type"));
    }
    let schema = match v.get("schema") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => definition_text(s),
        Some(doc) => doc.to_string(),
    };
    let properties: BTreeMap<String, String> = match v.get("properties") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                Ok((k.clone(), v.as_str().ok_or(format!("{field} property `{k}` is not a string"))?.to_string()))
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err(format!("{field} `properties` is not an object")),
    };
    let name = v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(&kind).to_string();
    Ok(SchemaSide { name, payload: SchemaPayload { schema_type: kind, schema, properties } })
}

/// A schema whose values are raw bytes (given in base64 by REST requests).
fn is_bytes(p: &SchemaPayload) -> bool {
    matches!(p.schema_type.as_str(), "BYTES" | "NONE")
}

/// A definition as text: one that reads as JSON is taken as it is; otherwise base64 of UTF-8
/// text (how Pulsar's JSON writes a `SchemaInfo`'s bytes) is decoded; anything else is taken as
/// it is.
fn definition_text(s: &str) -> String {
    if s.is_empty() || serde_json::from_str::<Value>(s).is_ok() {
        return s.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| s.to_string())
}

/// `text` encoded as `schema` serializes a value. `None` (no schema): the text's UTF-8 bytes.
pub fn encode_payload(schema: Option<&SchemaPayload>, text: &str) -> Result<Bytes, String> {
    let Some(schema) = schema else { return Ok(Bytes::copy_from_slice(text.as_bytes())) };
    let number = |what: &str| format!("`{text}` is not {what}");
    let out: Vec<u8> = match schema.schema_type.as_str() {
        "BYTES" | "NONE" => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("`{text}` is not base64 (the schema is BYTES): {e}"))?,
        "STRING" => text.as_bytes().to_vec(),
        "BOOLEAN" => match text.trim() {
            "true" => vec![1],
            "false" => vec![0],
            _ => return Err(number("a BOOLEAN (true or false)")),
        },
        "INT8" => text.trim().parse::<i8>().map_err(|_| number("an INT8"))?.to_be_bytes().to_vec(),
        "INT16" => text.trim().parse::<i16>().map_err(|_| number("an INT16"))?.to_be_bytes().to_vec(),
        "INT32" => text.trim().parse::<i32>().map_err(|_| number("an INT32"))?.to_be_bytes().to_vec(),
        "INT64" => text.trim().parse::<i64>().map_err(|_| number("an INT64"))?.to_be_bytes().to_vec(),
        "FLOAT" => text.trim().parse::<f32>().map_err(|_| number("a FLOAT"))?.to_bits().to_be_bytes().to_vec(),
        "DOUBLE" => text.trim().parse::<f64>().map_err(|_| number("a DOUBLE"))?.to_bits().to_be_bytes().to_vec(),
        // Pulsar's date and time schemas hold epoch milliseconds.
        "DATE" | "TIME" | "TIMESTAMP" => {
            text.trim().parse::<i64>().map_err(|_| number("epoch milliseconds"))?.to_be_bytes().to_vec()
        }
        "JSON" => {
            let v: Value = serde_json::from_str(text).map_err(|e| format!("the payload is not JSON: {e}"))?;
            serde_json::to_vec(&v).map_err(|e| e.to_string())?
        }
        "AVRO" => avro::encode_json(&schema.schema, text)?,
        other => {
            return Err(format!(
                "REST produce does not encode {other} payloads: produce them with a Pulsar client, or as BYTES (base64)"
            ));
        }
    };
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(kind: &str, definition: &str) -> SchemaPayload {
        SchemaPayload { schema_type: kind.into(), schema: definition.into(), properties: BTreeMap::new() }
    }

    #[test]
    fn primitives_are_encoded_as_pulsars_schemas_write_them() {
        let enc = |k: &str, t: &str| encode_payload(Some(&schema(k, "")), t).map(|b| b.to_vec());
        assert_eq!(enc("INT32", "258").unwrap(), vec![0, 0, 1, 2]);
        assert_eq!(enc("INT64", "-1").unwrap(), vec![0xff; 8]);
        assert_eq!(enc("INT16", "1").unwrap(), vec![0, 1]);
        assert_eq!(enc("INT8", "-2").unwrap(), vec![0xfe]);
        assert_eq!(enc("BOOLEAN", "true").unwrap(), vec![1]);
        assert_eq!(enc("DOUBLE", "1.5").unwrap(), 1.5f64.to_bits().to_be_bytes().to_vec());
        assert_eq!(enc("FLOAT", "1.5").unwrap(), 1.5f32.to_bits().to_be_bytes().to_vec());
        assert_eq!(enc("TIMESTAMP", "1000").unwrap(), 1000i64.to_be_bytes().to_vec());
        assert_eq!(enc("STRING", "héllo").unwrap(), "héllo".as_bytes());
        assert_eq!(enc("JSON", "{ \"a\" : 1 }").unwrap(), b"{\"a\":1}");
        assert!(enc("INT8", "300").unwrap_err().contains("INT8"));
        assert!(enc("BOOLEAN", "yes").is_err());
        assert!(enc("JSON", "{").is_err());
        assert!(enc("PROTOBUF_NATIVE", "x").unwrap_err().contains("does not encode"));
        assert_eq!(encode_payload(None, "plain").unwrap().as_ref(), b"plain");
    }

    #[test]
    fn schema_info_json_takes_the_definition_as_text_json_or_base64() {
        let avro = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(avro);
        let as_text = serde_json::json!({"type": "AVRO", "schema": avro}).to_string();
        let as_b64 =
            serde_json::json!({"name": "R", "type": "AVRO", "schema": b64, "properties": {"p": "1"}}).to_string();
        let as_doc =
            serde_json::json!({"type": "avro", "schema": serde_json::from_str::<Value>(avro).unwrap()}).to_string();
        assert_eq!(parse_schema_info(&as_text).unwrap().unwrap().schema, avro);
        let p = parse_schema_info(&as_b64).unwrap().unwrap();
        assert_eq!((p.schema.as_str(), p.properties["p"].as_str()), (avro, "1"));
        assert_eq!(parse_schema_info(&as_doc).unwrap().unwrap().schema_type, "AVRO");
        assert_eq!(parse_schema_info(r#"{"type":"STRING"}"#).unwrap(), Some(schema("STRING", "")));
        assert_eq!(parse_schema_info(r#"{"type":"BYTES"}"#).unwrap(), None);
        assert!(parse_schema_info(r#"{"type":"NOPE"}"#).unwrap_err().contains("NOPE"));
        assert!(parse_schema_info("not json").is_err());
        assert!(parse_schema_info(r#"{"schema":""}"#).unwrap_err().contains("type"));
    }
}
