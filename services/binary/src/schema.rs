//! Schemas on the wire and in the registry: the `Schema` of PRODUCER, SUBSCRIBE and the schema
//! commands against the broker's `SchemaPayload` (what the admin API stores and shows), and
//! schema versions as Pulsar's clients carry them (eight bytes, big-endian).

use crate::error::BinaryError;
use magnetar_broker::schemas::{SCHEMA_TYPES, SchemaPayload, SchemaVersionInfo};
use magnetar_protocol::proto::{KeyValue, Schema, SchemaType};
use serde_json::Value;

/// Pulsar's names of the wire's schema types `Schema.Type` 0 (`NONE`) to 20
/// (`PROTOBUF_NATIVE`), by number; `AUTO_CONSUME` (21) is never stored.
fn names() -> &'static [&'static str] {
    &SCHEMA_TYPES[..=SchemaType::ProtobufNative as usize]
}

/// The registry's form of a client's schema; `None` for what is no schema to register or
/// check: none (bytes) and `AUTO_CONSUME` (the consumer takes whatever the topic has).
pub(crate) fn payload_of(schema: &Schema) -> Result<Option<SchemaPayload>, BinaryError> {
    let kind = SchemaType::try_from(schema.r#type)
        .map_err(|_| BinaryError::NotAllowed(format!("unknown schema type {}", schema.r#type)))?;
    if matches!(kind, SchemaType::None | SchemaType::AutoConsume) {
        return Ok(None);
    }
    let data = if kind == SchemaType::KeyValue {
        key_value_text(&schema.schema_data)?
    } else {
        String::from_utf8(schema.schema_data.clone()).map_err(|_| {
            BinaryError::NotAllowed(format!("the definition of a {} schema is not UTF-8", names()[kind as usize]))
        })?
    };
    Ok(Some(SchemaPayload {
        schema_type: names()[kind as usize].to_string(),
        schema: data,
        properties: schema.properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
    }))
}

/// A stored version as the wire's `Schema`, named after the topic as Pulsar names it.
pub(crate) fn schema_of(topic: &str, v: &SchemaVersionInfo) -> Result<Schema, BinaryError> {
    let kind = names().iter().position(|n| *n == v.schema_type).unwrap_or(SchemaType::None as usize);
    let data =
        if kind == SchemaType::KeyValue as usize { key_value_bytes(&v.data)? } else { v.data.clone().into_bytes() };
    Ok(Schema {
        name: topic.to_string(),
        schema_data: data,
        r#type: kind as i32,
        properties: v.properties.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.clone() }).collect(),
    })
}

/// A version as Pulsar's clients carry it (its `LongSchemaVersion`).
pub(crate) fn version_bytes(version: i64) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

/// A version from the wire; `None` (the latest) when empty.
pub(crate) fn parse_version(bytes: &[u8]) -> Result<Option<i64>, BinaryError> {
    match bytes.len() {
        0 => Ok(None),
        8 => Ok(Some(i64::from_be_bytes(bytes.try_into().expect("eight bytes")))),
        n => Err(BinaryError::NotAllowed(format!("a schema version is eight bytes, not {n}"))),
    }
}

/// A `KEY_VALUE` schema's wire data (the key's and the value's definitions, each behind its
/// length as a big-endian i32, -1 for none) as the admin API shows it: `{"key": ..,
/// "value": ..}`, each side its JSON document, or a string ("" for a primitive side).
fn key_value_text(data: &[u8]) -> Result<String, BinaryError> {
    let bad = || BinaryError::NotAllowed("malformed KEY_VALUE schema data: two length-prefixed parts expected".into());
    let mut rest = data;
    let mut side = || -> Result<Value, BinaryError> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = i32::from_be_bytes(*len);
        let len = if len < 0 { 0 } else { len as usize };
        if tail.len() < len {
            return Err(bad());
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        let text = std::str::from_utf8(part).map_err(|_| bad())?;
        Ok(serde_json::from_str::<Value>(text).ok().filter(Value::is_object).unwrap_or_else(|| Value::from(text)))
    };
    let (key, value) = (side()?, side()?);
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(serde_json::json!({ "key": key, "value": value }).to_string())
}

/// The reverse of [`key_value_text`].
fn key_value_bytes(text: &str) -> Result<Vec<u8>, BinaryError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| BinaryError::NotAllowed(format!("stored KEY_VALUE schema is not JSON: {e}")))?;
    let mut out = Vec::new();
    for side in ["key", "value"] {
        let part = match doc.get(side) {
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => other.to_string().into_bytes(),
        };
        out.extend_from_slice(&(part.len() as i32).to_be_bytes());
        out.extend_from_slice(&part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(kind: SchemaType, data: &[u8]) -> Schema {
        Schema {
            name: "t".into(),
            schema_data: data.to_vec(),
            r#type: kind as i32,
            properties: vec![KeyValue { key: "k".into(), value: "v".into() }],
        }
    }

    fn stored(p: &SchemaPayload) -> SchemaVersionInfo {
        SchemaVersionInfo {
            version: 3,
            schema_type: p.schema_type.clone(),
            timestamp: 0,
            data: p.schema.clone(),
            properties: p.properties.clone(),
        }
    }

    #[test]
    fn a_json_schema_keeps_its_type_definition_and_properties_both_ways() {
        let def = br#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
        let p = payload_of(&wire(SchemaType::Json, def)).unwrap().expect("a schema");
        assert_eq!((p.schema_type.as_str(), p.schema.as_bytes()), ("JSON", &def[..]));
        assert_eq!(p.properties.get("k").map(String::as_str), Some("v"));
        let back = schema_of("persistent://a/b/t", &stored(&p)).unwrap();
        assert_eq!((back.r#type, back.schema_data.as_slice()), (SchemaType::Json as i32, &def[..]));
        assert_eq!(back.properties, wire(SchemaType::Json, def).properties);
    }

    #[test]
    fn bytes_and_auto_consume_are_no_schema_and_unknown_types_are_refused() {
        assert!(payload_of(&wire(SchemaType::None, b"")).unwrap().is_none());
        assert!(payload_of(&wire(SchemaType::AutoConsume, b"")).unwrap().is_none());
        let unknown = Schema { r#type: 99, ..wire(SchemaType::None, b"") };
        assert!(payload_of(&unknown).unwrap_err().to_string().contains("99"));
        let binary = wire(SchemaType::Avro, &[0xff, 0xfe]);
        assert!(payload_of(&binary).unwrap_err().to_string().contains("AVRO"));
    }

    #[test]
    fn key_value_data_reads_as_the_admin_apis_json_and_back() {
        let key = br#"{"type":"record","name":"K","fields":[]}"#;
        let mut data = (key.len() as i32).to_be_bytes().to_vec();
        data.extend_from_slice(key);
        data.extend_from_slice(&(-1i32).to_be_bytes());
        let p = payload_of(&wire(SchemaType::KeyValue, &data)).unwrap().expect("a schema");
        let doc: Value = serde_json::from_str(&p.schema).unwrap();
        assert_eq!((doc["key"]["name"].as_str(), doc["value"].as_str()), (Some("K"), Some("")));
        let back = schema_of("t", &stored(&p)).unwrap();
        // The same parts; an absent side comes back empty (length 0 rather than -1).
        assert_eq!(payload_of(&back).unwrap(), Some(p));
        assert!(payload_of(&wire(SchemaType::KeyValue, &[0, 0, 0, 9, b'x'])).is_err());
        assert!(payload_of(&wire(SchemaType::KeyValue, &[0, 0, 0])).is_err());
    }

    #[test]
    fn wire_numbers_name_pulsars_types() {
        assert_eq!(names()[SchemaType::Json as usize], "JSON");
        assert_eq!(names()[SchemaType::KeyValue as usize], "KEY_VALUE");
        assert_eq!(names()[SchemaType::LocalDateTime as usize], "LOCAL_DATE_TIME");
        assert_eq!(names().last(), Some(&"PROTOBUF_NATIVE"));
    }

    #[test]
    fn versions_are_eight_big_endian_bytes() {
        assert_eq!(version_bytes(1), vec![0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(parse_version(&version_bytes(258)).unwrap(), Some(258));
        assert_eq!(parse_version(&[]).unwrap(), None);
        assert!(parse_version(&[1, 2]).is_err());
    }
}
