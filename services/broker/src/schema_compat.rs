//! Whether a new schema version may follow the live ones under a compatibility strategy: a pure
//! decision, so the registry (`schemas`) only reads the versions and the strategy in force.
//!
//! What is checked, precisely:
//! - `ALWAYS_COMPATIBLE`: anything follows, of any type.
//! - `ALWAYS_INCOMPATIBLE`: nothing follows once a live version exists.
//! - every other strategy, `UNDEFINED` (the broker's rule) included: the type must be the
//!   latest version's.
//! - `BACKWARD`, `FORWARD`, `FULL` and their `_TRANSITIVE` forms, for `AVRO` and `JSON` schemas
//!   whose definitions (new and old) are both Avro records: field by field, by name. A reader
//!   reads a writer's data when every reader field missing from the writer has a `default`, and
//!   every field in both has the same `type` (compared as JSON: Avro's promotions such as `int` to
//!   `long`, aliases and nested records' evolution are not recognised, so such changes are
//!   refused). BACKWARD: the new version reads the old; FORWARD: the old reads the new; FULL:
//!   both. Transitive forms check every live version of the same type, the others the latest.
//!   Definitions that are not Avro records (and other schema types) are judged by type only.

use crate::schemas::SchemaPayload;
use magnetar_core::SchemaCompatibilityStrategy as Strategy;
use serde_json::Value;

/// Why `new` cannot follow `live` (oldest first) under `strategy`, if it cannot.
pub fn incompatibility(strategy: Strategy, live: &[SchemaPayload], new: &SchemaPayload) -> Option<String> {
    let latest = live.last()?;
    match strategy {
        Strategy::AlwaysCompatible => return None,
        Strategy::AlwaysIncompatible => {
            return Some("schema compatibility strategy ALWAYS_INCOMPATIBLE refuses any new version".into());
        }
        _ => {}
    }
    if latest.schema_type != new.schema_type {
        return Some(format!(
            "schema type {} differs from the type {} of the latest version",
            new.schema_type, latest.schema_type
        ));
    }
    if !(strategy.checks_backward() || strategy.checks_forward())
        || !matches!(new.schema_type.as_str(), "AVRO" | "JSON")
    {
        return None;
    }
    let new_fields = record_fields(&new.schema)?;
    let against: Vec<&SchemaPayload> = if strategy.is_transitive() {
        live.iter().filter(|p| p.schema_type == new.schema_type).collect()
    } else {
        vec![latest]
    };
    for old in against.into_iter().rev() {
        let Some(old_fields) = record_fields(&old.schema) else { continue };
        let why = if strategy.checks_backward() { unreadable(&new_fields, &old_fields) } else { None }
            .map(|w| format!("the new version cannot read data of an earlier one: {w}"))
            .or_else(|| {
                if strategy.checks_forward() { unreadable(&old_fields, &new_fields) } else { None }
                    .map(|w| format!("an earlier version cannot read data of the new one: {w}"))
            });
        if let Some(why) = why {
            return Some(format!("schema compatibility strategy {}: {why}", strategy.as_str()));
        }
    }
    None
}

/// One field of an Avro record: its name, its type (as written) and whether it has a default.
struct Field {
    name: String,
    kind: Value,
    has_default: bool,
}

/// The fields of an Avro record definition; `None` when the definition is not one.
fn record_fields(definition: &str) -> Option<Vec<Field>> {
    let v: Value = serde_json::from_str(definition).ok()?;
    if v.get("type")?.as_str()? != "record" {
        return None;
    }
    v.get("fields")?
        .as_array()?
        .iter()
        .map(|f| {
            Some(Field {
                name: f.get("name")?.as_str()?.to_string(),
                kind: f.get("type")?.clone(),
                has_default: f.get("default").is_some(),
            })
        })
        .collect()
}

/// Why a reader with `reader` fields cannot read data written with `writer` fields, if it cannot.
fn unreadable(reader: &[Field], writer: &[Field]) -> Option<String> {
    reader.iter().find_map(|r| match writer.iter().find(|w| w.name == r.name) {
        None if !r.has_default => Some(format!("field {} has no default", r.name)),
        Some(w) if w.kind != r.kind => Some(format!("field {} changes type from {} to {}", r.name, w.kind, r.kind)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(fields: &str) -> SchemaPayload {
        SchemaPayload {
            schema_type: "AVRO".into(),
            schema: format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#),
            properties: Default::default(),
        }
    }

    const A: &str = r#"{"name":"a","type":"string"}"#;
    const B_DEFAULT: &str = r#"{"name":"b","type":"int","default":0}"#;
    const B: &str = r#"{"name":"b","type":"int"}"#;

    #[test]
    fn the_always_strategies_ignore_the_definitions() {
        let live = [avro(A)];
        let other =
            SchemaPayload { schema_type: "STRING".into(), schema: String::new(), properties: Default::default() };
        assert_eq!(incompatibility(Strategy::AlwaysCompatible, &live, &other), None);
        assert!(incompatibility(Strategy::AlwaysIncompatible, &live, &avro(A)).is_some());
        assert_eq!(incompatibility(Strategy::AlwaysIncompatible, &[], &avro(A)), None, "the first version");
        assert!(incompatibility(Strategy::Undefined, &live, &other).is_some(), "the type rule");
    }

    #[test]
    fn backward_allows_removing_fields_and_adding_them_with_defaults() {
        let live = [avro(&format!("{A},{B}"))];
        assert_eq!(incompatibility(Strategy::Backward, &live, &avro(A)), None);
        let added = [avro(A)];
        assert_eq!(incompatibility(Strategy::Backward, &added, &avro(&format!("{A},{B_DEFAULT}"))), None);
        assert!(incompatibility(Strategy::Backward, &added, &avro(&format!("{A},{B}"))).is_some());
    }

    #[test]
    fn forward_is_the_reverse_and_full_is_both() {
        let live = [avro(&format!("{A},{B}"))];
        assert!(incompatibility(Strategy::Forward, &live, &avro(A)).is_some(), "an old reader needs b");
        assert_eq!(incompatibility(Strategy::Forward, &[avro(A)], &avro(&format!("{A},{B}"))), None);
        assert!(incompatibility(Strategy::Full, &[avro(A)], &avro(&format!("{A},{B}"))).is_some());
        assert_eq!(incompatibility(Strategy::Full, &[avro(A)], &avro(&format!("{A},{B_DEFAULT}"))), None);
    }

    #[test]
    fn a_changed_field_type_is_refused() {
        let changed = avro(r#"{"name":"a","type":"int"}"#);
        assert!(incompatibility(Strategy::Backward, &[avro(A)], &changed).is_some());
    }

    #[test]
    fn transitive_strategies_check_every_live_version() {
        // v0 has b without default; v1 dropped it; v2 adds b back without default.
        let live = [avro(&format!("{A},{B}")), avro(A)];
        let new = avro(&format!("{A},{B}"));
        assert!(incompatibility(Strategy::Backward, &live, &new).is_some(), "b has no default against v1");
        let live = [avro(A), avro(&format!("{A},{B_DEFAULT}"))];
        let new = avro(&format!("{A},{B}"));
        assert_eq!(incompatibility(Strategy::Backward, &live, &new), None, "v1 writes b");
        assert!(incompatibility(Strategy::BackwardTransitive, &live, &new).is_some(), "v0 does not");
    }

    #[test]
    fn definitions_that_are_not_records_are_judged_by_type() {
        let live = [SchemaPayload { schema_type: "JSON".into(), schema: "{}".into(), properties: Default::default() }];
        assert!(incompatibility(Strategy::Full, &live, &avro(A)).is_some(), "type differs");
        let json = SchemaPayload { schema_type: "JSON".into(), schema: "[]".into(), properties: Default::default() };
        assert_eq!(incompatibility(Strategy::Full, &live, &json), None);
    }
}
