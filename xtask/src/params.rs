//! The argument types of the bindings, read from the bridge's JSON Schema
//! (`removebgvideo::bridge::schema`): one group of fields per operation, plus the per-call
//! options, the client settings and the policies, in their public form (a duration `x_ms` on
//! the wire is `x`, in seconds, in Python and Node). The Python and TypeScript generators
//! write them; a type the bridge gains that has no public form here stops codegen.

use serde_json::{Map, Value};

/// What a field holds, in terms both languages map.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    /// A file path.
    Path,
    /// The caller's own object (`metadata`).
    Map,
    /// Headers: `[name, value]` pairs on the wire, a name-to-value map in the APIs.
    Headers,
    /// A type the packages define by hand under this name (`BackgroundLike`, `Job`, ...).
    Named(&'static str),
    /// One of these strings.
    Choice(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Field {
    /// The public name, snake_case (`timeout` for the wire's `timeout_ms`).
    pub name: String,
    pub kind: Kind,
    pub required: bool,
    pub doc: String,
    /// A duration: seconds in the APIs, milliseconds on the wire.
    pub seconds: bool,
}

#[derive(Clone, Debug)]
pub struct Group {
    /// The type's name (`CreateJobParams`).
    pub name: String,
    /// The operation it is the arguments of (`create_job`), if any.
    pub operation: Option<String>,
    pub doc: String,
    pub fields: Vec<Field>,
}

/// The bridge's schema, as committed in `schema/bridge.schema.json`.
pub fn bridge_schema() -> Value {
    removebgvideo::bridge::schema::schema()
}

fn defs(schema: &Value) -> &Map<String, Value> {
    schema["$defs"]
        .as_object()
        .expect("the bridge schema has $defs")
}

fn doc(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('\n', " ")
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
}

/// `x` or `x | null`: the `x`.
fn not_null(schema: &Value) -> &Value {
    if let Some((_, others)) = crate::codegen::any_of(schema)
        && let [one] = others.as_slice()
        && ref_name(schema).is_none()
    {
        return one;
    }
    schema
}

fn kind(defs: &Map<String, Value>, field: &str, schema: &Value) -> Kind {
    let schema = not_null(schema);
    if let Some(name) = ref_name(schema) {
        return match name {
            "Float" => Kind::Number,
            "Model" | "OutputFormat" | "JobStatus" => Kind::String,
            "BackgroundArg" => Kind::Named("BackgroundLike"),
            "PollPolicyArgs" => Kind::Named("PollPolicy"),
            "RetryPolicyArgs" => Kind::Named("RetryPolicy"),
            "Job" => Kind::Named("Job"),
            "Composition" => Kind::Named("Composition"),
            other => match defs.get(other).and_then(|d| d.get("oneOf")) {
                Some(Value::Array(options)) => Kind::Choice(
                    options
                        .iter()
                        .filter_map(|o| o.get("const").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => panic!(
                    "the bridge type {other} (field {field}) has no public form in xtask/src/params.rs"
                ),
            },
        };
    }
    let types = crate::codegen::types(schema);
    match types.iter().find(|t| **t != "null").copied() {
        Some("string") if schema.get("format").and_then(Value::as_str) == Some("path") => {
            Kind::Path
        }
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("object") => Kind::Map,
        Some("array") if field == "headers" => Kind::Headers,
        other => {
            panic!("the bridge field {field} ({other:?}) has no public form in xtask/src/params.rs")
        }
    }
}

/// The fields of an object definition, required ones first, then by name.
fn group(defs: &Map<String, Value>, def: &str, name: &str, operation: Option<&str>) -> Group {
    let schema = defs
        .get(def)
        .unwrap_or_else(|| panic!("no {def} in the bridge schema"));
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let mut fields: Vec<Field> = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
        .iter()
        .map(|(wire, property)| {
            let seconds = wire.ends_with("_ms");
            let mut doc = doc(property);
            if seconds {
                doc = format!("{} In seconds.", doc.trim_end());
            }
            Field {
                name: wire.strip_suffix("_ms").unwrap_or(wire).to_owned(),
                kind: kind(defs, wire, property),
                required: required.contains(&wire.as_str()),
                doc,
                seconds,
            }
        })
        .collect();
    fields.sort_by_key(|f| !f.required);
    Group {
        name: name.to_owned(),
        operation: operation.map(str::to_owned),
        doc: doc(schema),
        fields,
    }
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// One group per operation, named `<Operation>Params`, in the order of the `Operation` enum.
pub fn operations(schema: &Value) -> Vec<Group> {
    let defs = defs(schema);
    defs["Operation"]["oneOf"]
        .as_array()
        .expect("Operation is a oneOf")
        .iter()
        .map(|variant| {
            let operation = variant["properties"]["operation"]["const"]
                .as_str()
                .expect("each operation names itself");
            let arguments = ref_name(&variant["properties"]["arguments"])
                .expect("each operation's arguments are a type");
            let mut params = group(
                defs,
                arguments,
                &format!("{}Params", pascal(operation)),
                Some(operation),
            );
            params.doc = doc(variant);
            params
        })
        .collect()
}

/// The per-call options, the client settings and the two policies.
pub fn settings_and_options(schema: &Value) -> (Group, Group, Group, Group) {
    let defs = defs(schema);
    (
        group(defs, "Options", "CallOptions", None),
        group(defs, "Settings", "ClientOptions", None),
        group(defs, "PollPolicyArgs", "PollPolicy", None),
        group(defs, "RetryPolicyArgs", "RetryPolicy", None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_params_in_public_form() {
        let schema = bridge_schema();
        let operations = operations(&schema);
        let names: Vec<&str> = operations.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names.len(), 12);
        assert!(names.contains(&"CreateJobParams") && names.contains(&"WaitParams"));
        let wait = operations.iter().find(|g| g.name == "WaitParams").unwrap();
        let timeout = wait.fields.iter().find(|f| f.name == "timeout").unwrap();
        assert!(timeout.seconds && timeout.kind == Kind::Number && !timeout.required);
        assert!(timeout.doc.ends_with("In seconds."));
        assert_eq!(wait.fields[0].name, "job_id");
        assert!(wait.fields[0].required);
        let (options, settings, _, _) = settings_and_options(&schema);
        assert!(
            options
                .fields
                .iter()
                .any(|f| f.name == "headers" && f.kind == Kind::Headers)
        );
        let idempotency = settings
            .fields
            .iter()
            .find(|f| f.name == "idempotency")
            .unwrap();
        assert_eq!(
            idempotency.kind,
            Kind::Choice(vec![
                "detect".into(),
                "honoured".into(),
                "not_honoured".into()
            ])
        );
    }
}
