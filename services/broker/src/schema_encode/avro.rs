//! A value in Avro's JSON encoding, written in Avro's binary encoding as a schema says (the
//! Avro specification, "Binary Encoding" and "JSON Encoding"): what Pulsar's REST producer does
//! with an Avro schema, and what Pulsar's Avro schema reads back.
//!
//! Unions take a value wrapped in its branch's type name (`{"string": "x"}`, `null` bare), as
//! Avro's JSON encoding writes them; a bare value is also taken, by the first branch that
//! encodes it (what people write by hand for the usual `["null", T]`). A record field missing
//! from the value takes its `default`. Logical types are written as their underlying type.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// Named types (records, enums, fixed) by full name.
type Names = HashMap<String, Value>;

/// `text` (Avro JSON) as Avro binary under the schema `definition` (Avro schema JSON).
pub(super) fn encode_json(definition: &str, text: &str) -> Result<Vec<u8>, String> {
    let schema: Value =
        serde_json::from_str(definition).map_err(|e| format!("the topic's Avro schema is not JSON: {e}"))?;
    let datum: Value = serde_json::from_str(text).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let mut names = Names::new();
    collect_names(&schema, "", &mut names)?;
    let mut out = Vec::new();
    Writer { names: &names }.write(&schema, "", &datum, &mut out, "payload")?;
    Ok(out)
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() { name.to_string() } else { format!("{namespace}.{name}") }
}

/// The namespace a named type defines for the names inside it.
fn namespace_of(def: &Map<String, Value>, enclosing: &str) -> String {
    let name = def.get("name").and_then(Value::as_str).unwrap_or("");
    match (name.rsplit_once('.'), def.get("namespace").and_then(Value::as_str)) {
        (Some((ns, _)), _) => ns.to_string(),
        (None, Some(ns)) => ns.to_string(),
        (None, None) => enclosing.to_string(),
    }
}

/// Every named type of the schema, so that a reference may come before or after its definition
/// in the order values are written.
fn collect_names(schema: &Value, ns: &str, names: &mut Names) -> Result<(), String> {
    match schema {
        Value::Array(branches) => branches.iter().try_for_each(|b| collect_names(b, ns, names)),
        Value::Object(def) => {
            let kind = def.get("type").ok_or("an Avro schema object without `type`")?;
            match kind.as_str() {
                Some(k @ ("record" | "error" | "enum" | "fixed")) => {
                    let name = def.get("name").and_then(Value::as_str).ok_or(format!("an Avro {k} without a name"))?;
                    let inner = namespace_of(def, ns);
                    names.insert(full_name(name, &inner), schema.clone());
                    if let Some(fields) = def.get("fields").and_then(Value::as_array) {
                        for f in fields {
                            collect_names(f.get("type").ok_or("an Avro field without `type`")?, &inner, names)?;
                        }
                    }
                    Ok(())
                }
                Some("array") => collect_names(def.get("items").ok_or("an Avro array without `items`")?, ns, names),
                Some("map") => collect_names(def.get("values").ok_or("an Avro map without `values`")?, ns, names),
                _ => collect_names(kind, ns, names),
            }
        }
        _ => Ok(()),
    }
}

fn zigzag(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    zigzag(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Avro's JSON encoding of `bytes` and `fixed`: a string whose code points 0–255 are the bytes.
fn latin1(v: &Value, at: &str) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or(format!("{at}: expected a string of bytes"))?;
    s.chars().map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("{at}: `{c}` is not a byte"))).collect()
}

/// The name a union branch is selected by in Avro's JSON encoding.
fn branch_name(branch: &Value, ns: &str) -> Option<String> {
    match branch {
        Value::String(s) => Some(if is_primitive(s) { s.clone() } else { full_name(s, ns) }),
        Value::Object(def) => match def.get("type")? {
            Value::String(k) if matches!(k.as_str(), "record" | "error" | "enum" | "fixed") => {
                Some(full_name(def.get("name")?.as_str()?, &namespace_of(def, ns)))
            }
            Value::String(k) => Some(k.clone()),
            _ => None,
        },
        Value::Array(_) => None,
        _ => None,
    }
}

fn is_primitive(s: &str) -> bool {
    matches!(s, "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string")
}

/// Writes values under a schema whose named types are `names`.
struct Writer<'a> {
    names: &'a Names,
}

impl Writer<'_> {
    fn write(&self, schema: &Value, ns: &str, v: &Value, out: &mut Vec<u8>, at: &str) -> Result<(), String> {
        match schema {
            Value::String(s) if is_primitive(s) => write_primitive(s, v, out, at),
            Value::String(s) => {
                let def = self
                    .names
                    .get(&full_name(s, ns))
                    .or_else(|| self.names.get(s))
                    .ok_or(format!("{at}: the Avro schema names an unknown type `{s}`"))?;
                self.write(def, ns, v, out, at)
            }
            Value::Array(branches) => self.write_union(branches, ns, v, out, at),
            Value::Object(def) => self.write_complex(def, ns, v, out, at),
            _ => Err(format!("{at}: not an Avro schema: {schema}")),
        }
    }

    fn write_union(&self, branches: &[Value], ns: &str, v: &Value, out: &mut Vec<u8>, at: &str) -> Result<(), String> {
        let pick = |i: usize, value: &Value, out: &mut Vec<u8>| -> Result<(), String> {
            zigzag(out, i as i64);
            self.write(&branches[i], ns, value, out, at)
        };
        if v.is_null() {
            let i = branches
                .iter()
                .position(|b| b == "null")
                .ok_or(format!("{at}: null is not one of the union's types"))?;
            return pick(i, v, out);
        }
        // Avro's JSON encoding: `{"<branch type name>": value}`.
        if let Some((name, inner)) = v.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next())
            && let Some(i) = branches
                .iter()
                .position(|b| branch_name(b, ns).is_some_and(|n| n == *name || n.ends_with(&format!(".{name}"))))
        {
            return pick(i, inner, out);
        }
        for (i, b) in branches.iter().enumerate() {
            if b == "null" {
                continue;
            }
            let mut attempt = Vec::new();
            if pick(i, v, &mut attempt).is_ok() {
                out.extend_from_slice(&attempt);
                return Ok(());
            }
        }
        Err(format!("{at}: {v} is none of the union's types"))
    }
}

fn write_primitive(kind: &str, v: &Value, out: &mut Vec<u8>, at: &str) -> Result<(), String> {
    let expected = |what: &str| format!("{at}: expected {what}, got {v}");
    match kind {
        "null" => v.is_null().then_some(()).ok_or_else(|| expected("null")),
        "boolean" => {
            out.push(u8::from(v.as_bool().ok_or_else(|| expected("a boolean"))?));
            Ok(())
        }
        "int" => {
            let n = v.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| expected("an int"))?;
            zigzag(out, i64::from(n));
            Ok(())
        }
        "long" => {
            zigzag(out, v.as_i64().ok_or_else(|| expected("a long"))?);
            Ok(())
        }
        "float" => {
            out.extend_from_slice(&(v.as_f64().ok_or_else(|| expected("a float"))? as f32).to_le_bytes());
            Ok(())
        }
        "double" => {
            out.extend_from_slice(&v.as_f64().ok_or_else(|| expected("a double"))?.to_le_bytes());
            Ok(())
        }
        "bytes" => {
            write_bytes(out, &latin1(v, at)?);
            Ok(())
        }
        "string" => {
            write_bytes(out, v.as_str().ok_or_else(|| expected("a string"))?.as_bytes());
            Ok(())
        }
        _ => Err(format!("{at}: unknown Avro type `{kind}`")),
    }
}

impl Writer<'_> {
    fn write_complex(
        &self,
        def: &Map<String, Value>,
        ns: &str,
        v: &Value,
        out: &mut Vec<u8>,
        at: &str,
    ) -> Result<(), String> {
        let kind = def.get("type").ok_or(format!("{at}: an Avro schema object without `type`"))?;
        match kind.as_str() {
            Some("record" | "error") => {
                let inner = namespace_of(def, ns);
                let obj = v.as_object().ok_or(format!("{at}: expected an object, got {v}"))?;
                for f in def.get("fields").and_then(Value::as_array).ok_or(format!("{at}: a record without fields"))? {
                    let name = f.get("name").and_then(Value::as_str).ok_or(format!("{at}: a field without a name"))?;
                    let value = obj
                        .get(name)
                        .or_else(|| f.get("default"))
                        .ok_or(format!("{at}: field `{name}` is missing and has no default"))?;
                    let ty = f.get("type").ok_or(format!("{at}: field `{name}` has no type"))?;
                    self.write(ty, &inner, value, out, &format!("{at}.{name}"))?;
                }
                Ok(())
            }
            Some("enum") => {
                let symbols =
                    def.get("symbols").and_then(Value::as_array).ok_or(format!("{at}: an enum without symbols"))?;
                let i =
                    symbols.iter().position(|s| s == v).ok_or(format!("{at}: {v} is not one of the enum's symbols"))?;
                zigzag(out, i as i64);
                Ok(())
            }
            Some("fixed") => {
                let size = def.get("size").and_then(Value::as_u64).ok_or(format!("{at}: a fixed without a size"))?;
                let b = latin1(v, at)?;
                if b.len() as u64 != size {
                    return Err(format!("{at}: expected {size} bytes, got {}", b.len()));
                }
                out.extend_from_slice(&b);
                Ok(())
            }
            Some("array") => {
                let items = v.as_array().ok_or(format!("{at}: expected an array, got {v}"))?;
                let ty = def.get("items").ok_or(format!("{at}: an array without items"))?;
                write_blocks(out, items.iter().enumerate(), |(i, item), out| {
                    self.write(ty, ns, item, out, &format!("{at}[{i}]"))
                })
            }
            Some("map") => {
                let entries = v.as_object().ok_or(format!("{at}: expected an object, got {v}"))?;
                let ty = def.get("values").ok_or(format!("{at}: a map without values"))?;
                write_blocks(out, entries.iter(), |(k, item), out| {
                    write_bytes(out, k.as_bytes());
                    self.write(ty, ns, item, out, &format!("{at}.{k}"))
                })
            }
            // `{"type": "long", "logicalType": ...}` and the like: the underlying type.
            _ => self.write(kind, ns, v, out, at),
        }
    }
}

/// An array's or a map's items as Avro blocks: one block of them all (when there are any), then
/// the empty block that ends the list.
fn write_blocks<T>(
    out: &mut Vec<u8>,
    items: impl ExactSizeIterator<Item = T>,
    mut each: impl FnMut(T, &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    if items.len() > 0 {
        zigzag(out, items.len() as i64);
        for item in items {
            each(item, out)?;
        }
    }
    out.push(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = r#"{"type":"record","name":"User","namespace":"example","fields":[
        {"name":"name","type":"string"},
        {"name":"age","type":["null","int"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
        {"name":"best","type":["null","Color"]},
        {"name":"score","type":"double","default":0.5},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

    #[test]
    fn a_record_is_written_field_by_field_in_avros_binary_encoding() {
        let got = encode_json(
            USER,
            r#"{"name":"ab","age":{"int":3},"tags":["x"],"color":"GREEN","best":{"example.Color":"RED"},"at":-1}"#,
        )
        .unwrap();
        let mut expected = vec![4, b'a', b'b', 2, 6, 2, 2, b'x', 0, 2, 2, 0];
        expected.extend_from_slice(&0.5f64.to_le_bytes());
        expected.push(1);
        assert_eq!(got, expected);
    }

    #[test]
    fn bare_union_values_and_defaults_are_taken() {
        let bare = encode_json(USER, r#"{"name":"","age":3,"tags":[],"color":"RED","best":null,"score":2.0,"at":64}"#);
        let mut expected = vec![0, 2, 6, 0, 0, 0];
        expected.extend_from_slice(&2.0f64.to_le_bytes());
        expected.extend_from_slice(&[0x80, 0x01]);
        assert_eq!(bare.unwrap(), expected);
    }

    #[test]
    fn values_that_do_not_fit_the_schema_are_refused_with_where() {
        let e = encode_json(USER, r#"{"age":1}"#).unwrap_err();
        assert!(e.contains("`name` is missing"), "{e}");
        let e = encode_json(USER, r#"{"name":"a","tags":[1],"color":"RED","best":null,"at":1}"#).unwrap_err();
        assert!(e.contains("payload.tags[0]"), "{e}");
        let e = encode_json(USER, r#"{"name":"a","tags":[],"color":"BLUE","best":null,"at":1}"#).unwrap_err();
        assert!(e.contains("symbols"), "{e}");
        assert!(encode_json("{", "{}").unwrap_err().contains("not JSON"));
        assert!(encode_json(r#""int""#, "3000000000").is_err());
    }

    #[test]
    fn longs_are_zigzag_varints() {
        let enc = |n: i64| {
            let mut v = Vec::new();
            zigzag(&mut v, n);
            v
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(-1), vec![1]);
        assert_eq!(enc(1), vec![2]);
        assert_eq!(enc(-64), vec![0x7f]);
        assert_eq!(enc(64), vec![0x80, 0x01]);
        assert_eq!(enc(i64::MIN).len(), 10);
    }

    #[test]
    fn maps_fixed_bytes_and_nested_named_types() {
        let schema = r#"{"type":"record","name":"Outer","fields":[
            {"name":"m","type":{"type":"map","values":"long"}},
            {"name":"f","type":{"type":"fixed","name":"Two","size":2}},
            {"name":"b","type":"bytes"},
            {"name":"again","type":"Two"}]}"#;
        let got = encode_json(schema, r#"{"m":{"k":1},"f":"\u0001\u00ff","b":"AB","again":"zz"}"#).unwrap();
        assert_eq!(got, vec![2, 2, b'k', 2, 0, 1, 0xff, 4, b'A', b'B', b'z', b'z']);
    }
}
