//! KEY_VALUE schemas for REST produce, as Pulsar's REST producer makes them: the key's and the
//! value's schemas joined with `SEPARATED` encoding, so that the key travels as the message key
//! (base64 of its encoded bytes, flagged as such: Pulsar's `partition_key_b64_encoded`) and the
//! payload holds the value alone. A version named by `schemaVersion` may also be `INLINE` (a
//! Pulsar client registered it so): its payloads hold both, each behind its length.

use super::{SchemaSide, encode_payload};
use crate::schemas::SchemaPayload;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a KEY_VALUE schema puts the key (Pulsar's `kv.encoding.type`; `INLINE` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValueEncoding {
    /// The key is the message key, the payload the value.
    Separated,
    /// The payload is the key's length (i32, big-endian), the key, the value's length, the value.
    Inline,
}

/// The KEY_VALUE schema of `key` and `value`, with `SEPARATED` encoding, as the registry and the
/// admin API keep it: the definitions as `{"key": .., "value": ..}` (a JSON document, or text),
/// each side's name, type and properties under Pulsar's property names.
pub fn key_value_schema(key: &SchemaSide, value: &SchemaSide) -> SchemaPayload {
    let doc = |p: &SchemaPayload| {
        serde_json::from_str::<Value>(&p.schema)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::from(p.schema.clone()))
    };
    let mut properties = BTreeMap::new();
    for (which, side) in [("key", key), ("value", value)] {
        properties.insert(format!("{which}.schema.name"), side.name.clone());
        properties.insert(format!("{which}.schema.type"), side.payload.schema_type.clone());
        let props = serde_json::to_string(&side.payload.properties).expect("a map of strings is JSON");
        properties.insert(format!("{which}.schema.properties"), props);
    }
    properties.insert("kv.encoding.type".into(), "SEPARATED".into());
    SchemaPayload {
        schema_type: "KEY_VALUE".into(),
        schema: serde_json::json!({ "key": doc(&key.payload), "value": doc(&value.payload) }).to_string(),
        properties,
    }
}

/// A KEY_VALUE schema taken apart to encode messages with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValueSides {
    pub key: SchemaPayload,
    pub value: SchemaPayload,
    pub encoding: KeyValueEncoding,
}

/// The sides of a stored KEY_VALUE schema (the reverse of [`key_value_schema`]; a side without
/// a recorded type is `BYTES`, as Pulsar reads it).
pub fn key_value_sides(kv: &SchemaPayload) -> Result<KeyValueSides, String> {
    let doc: Value = serde_json::from_str(&kv.schema).map_err(|e| format!("the KEY_VALUE schema is not JSON: {e}"))?;
    let side = |which: &str| -> Result<SchemaPayload, String> {
        let schema = match doc.get(which) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let schema_type =
            kv.properties.get(&format!("{which}.schema.type")).map_or("BYTES".to_string(), |t| t.to_ascii_uppercase());
        if schema_type == "KEY_VALUE" {
            return Err(format!("the KEY_VALUE schema's {which} is itself KEY_VALUE"));
        }
        let properties = match kv.properties.get(&format!("{which}.schema.properties")).filter(|p| !p.is_empty()) {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| format!("the KEY_VALUE schema's {which}.schema.properties is not a JSON map: {e}"))?,
        };
        Ok(SchemaPayload { schema_type, schema, properties })
    };
    let encoding = match kv.properties.get("kv.encoding.type").map(|t| t.to_ascii_uppercase()).as_deref() {
        Some("SEPARATED") => KeyValueEncoding::Separated,
        None | Some("" | "INLINE") => KeyValueEncoding::Inline,
        Some(other) => return Err(format!("unknown kv.encoding.type `{other}`")),
    };
    Ok(KeyValueSides { key: side("key")?, value: side("value")?, encoding })
}

/// A REST message under a KEY_VALUE schema.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyValueMessage {
    /// The message key: base64 of the encoded key (`SEPARATED`), or none (`INLINE`).
    pub key: Option<String>,
    pub key_base64: bool,
    pub payload: Bytes,
}

impl KeyValueSides {
    /// `key` and `payload` (text, as REST gives them) encoded as Pulsar's KeyValue schema writes
    /// them.
    pub fn encode(&self, key: Option<&str>, payload: &str) -> Result<KeyValueMessage, String> {
        let value = encode_payload(Some(&self.value), payload)?;
        let key = key.map(|k| encode_payload(Some(&self.key), k).map_err(|e| format!("key: {e}"))).transpose()?;
        match self.encoding {
            KeyValueEncoding::Separated => Ok(KeyValueMessage {
                key_base64: key.is_some(),
                key: key.map(|k| base64::engine::general_purpose::STANDARD.encode(k)),
                payload: value,
            }),
            KeyValueEncoding::Inline => {
                let key =
                    key.ok_or("the topic's KEY_VALUE schema is INLINE (the key is in the payload): give a key")?;
                let mut out = BytesMut::with_capacity(8 + key.len() + value.len());
                out.put_i32(key.len() as i32);
                out.put_slice(&key);
                out.put_i32(value.len() as i32);
                out.put_slice(&value);
                Ok(KeyValueMessage { key: None, key_base64: false, payload: out.freeze() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_side;
    use super::*;

    fn side(text: &str) -> SchemaSide {
        parse_side("keySchema", text).unwrap()
    }

    #[test]
    fn a_joined_schema_comes_apart_into_its_sides() {
        let avro = r#"{"type":"record","name":"V","fields":[{"name":"a","type":"int"}]}"#;
        let key = side(r#"{"type":"INT32","properties":{"k":"1"}}"#);
        let value = side(&serde_json::json!({"name": "V", "type": "AVRO", "schema": avro}).to_string());
        let kv = key_value_schema(&key, &value);
        assert_eq!(kv.schema_type, "KEY_VALUE");
        assert_eq!(kv.properties["kv.encoding.type"], "SEPARATED");
        assert_eq!(kv.properties["key.schema.type"], "INT32");
        assert_eq!(kv.properties["value.schema.name"], "V");
        assert_eq!(kv.properties["key.schema.properties"], r#"{"k":"1"}"#);
        let sides = key_value_sides(&kv).unwrap();
        assert_eq!((&sides.key, sides.encoding), (&key.payload, KeyValueEncoding::Separated));
        // The value's document comes back as the same JSON (its members in another order).
        let json = |t: &str| serde_json::from_str::<Value>(t).unwrap();
        assert_eq!(json(&sides.value.schema), json(avro));
        assert_eq!(sides.value.schema_type, "AVRO");
    }

    #[test]
    fn separated_keys_are_base64_of_their_encoding_and_inline_ones_join_the_payload() {
        let kv = key_value_schema(&side(r#"{"type":"INT32"}"#), &side(r#"{"type":"STRING"}"#));
        let sides = key_value_sides(&kv).unwrap();
        let m = sides.encode(Some("258"), "v").unwrap();
        assert_eq!(
            m,
            KeyValueMessage { key: Some("AAABAg==".into()), key_base64: true, payload: Bytes::from_static(b"v") }
        );
        let keyless = sides.encode(None, "v").unwrap();
        assert_eq!((keyless.key, keyless.key_base64), (None, false));
        assert!(sides.encode(Some("x"), "v").unwrap_err().starts_with("key: "));
        let inline = KeyValueSides { encoding: KeyValueEncoding::Inline, ..sides };
        let m = inline.encode(Some("1"), "ab").unwrap();
        assert_eq!(m.payload.as_ref(), [0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(m.key, None);
        assert!(inline.encode(None, "ab").unwrap_err().contains("give a key"));
    }

    #[test]
    fn a_side_without_a_type_is_bytes_and_a_bad_encoding_is_refused() {
        let mut kv = SchemaPayload {
            schema_type: "KEY_VALUE".into(),
            schema: r#"{"key":"","value":""}"#.into(),
            properties: BTreeMap::new(),
        };
        let sides = key_value_sides(&kv).unwrap();
        assert_eq!((sides.key.schema_type.as_str(), sides.encoding), ("BYTES", KeyValueEncoding::Inline));
        kv.properties.insert("kv.encoding.type".into(), "SIDEWAYS".into());
        assert!(key_value_sides(&kv).unwrap_err().contains("SIDEWAYS"));
    }
}
