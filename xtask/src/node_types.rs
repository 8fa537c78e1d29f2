//! Generates `bindings/node/index.d.ts`: the result interfaces from the JSON Schema (in
//! camelCase, as the package returns them), the argument interfaces from the bridge's schema
//! (camelCase, durations in seconds), then the hand-written API declarations.

use serde_json::{Map, Value};

use crate::codegen::{self, RESULT_TYPES as TYPES, client_only_fields};
use crate::params::{Field, Group, Kind};

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The TypeScript type of a property schema.
fn ts_type(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or("");
        return if TYPES.contains(&name) {
            name.to_owned()
        } else {
            "string".into()
        };
    }
    if let Some((nullable, others)) = codegen::any_of(schema) {
        let inner = match others.as_slice() {
            [one] => ts_type(one),
            _ => "string".into(),
        };
        return if nullable {
            format!("{inner} | null")
        } else {
            inner
        };
    }
    let types = codegen::types(schema);
    let inner = match types.iter().find(|t| **t != "null").copied() {
        Some("string") => "string".to_owned(),
        Some("integer") | Some("number") => "number".to_owned(),
        Some("boolean") => "boolean".to_owned(),
        Some("array") => format!(
            "Array<{}>",
            ts_type(schema.get("items").unwrap_or(&Value::Null))
        ),
        Some("object") => "Record<string, unknown>".to_owned(),
        _ => "Record<string, unknown> | string | number | boolean".to_owned(),
    };
    if types.contains(&"null") {
        format!("{inner} | null")
    } else {
        inner
    }
}

fn interface(name: &str, schema: &Value, extra: &[(&str, &str)]) -> String {
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = format!("/** {description} */\nexport interface {name} {{\n");
    let empty = Map::new();
    for (field, property) in schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        if let Some(doc) = property.get("description").and_then(Value::as_str) {
            out.push_str(&format!("  /** {doc} */\n"));
        }
        let optional = if required.contains(&field.as_str()) {
            ""
        } else {
            "?"
        };
        out.push_str(&format!(
            "  {}{optional}: {}\n",
            camel(field),
            ts_type(property)
        ));
    }
    for (field, doc) in extra {
        out.push_str(&format!(
            "  /** {doc} */\n  {}?: string | null\n",
            camel(field)
        ));
    }
    out.push_str("}\n");
    out
}

/// Progress events: a discriminated union on `type`.
fn event_union(schema: &Value) -> String {
    let mut variants = Vec::new();
    for variant in schema
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let empty = Map::new();
        let properties = variant
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let tag = properties
            .get("type")
            .and_then(|t| t.get("const"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let required: Vec<&str> = variant
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = vec![format!("type: '{tag}'")];
        for (field, property) in properties {
            if field == "type" {
                continue;
            }
            let optional = if required.contains(&field.as_str()) {
                ""
            } else {
                "?"
            };
            fields.push(format!("{}{optional}: {}", camel(field), ts_type(property)));
        }
        variants.push(format!("  | {{ {} }}", fields.join("; ")));
    }
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("A progress event.");
    format!(
        "/** {description} */\nexport type Event =\n{}\n",
        variants.join("\n")
    )
}

fn ts_kind(kind: &Kind) -> String {
    match kind {
        Kind::String => "string".into(),
        Kind::Path => "string | URL".into(),
        Kind::Integer | Kind::Number => "number".into(),
        Kind::Boolean => "boolean".into(),
        Kind::Map => "Record<string, unknown>".into(),
        Kind::Headers => "Record<string, string>".into(),
        Kind::Named(name) => (*name).into(),
        Kind::Choice(values) => values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// JS-only members of the per-call options: (name, type, doc).
const CALL_EXTRAS: &[(&str, &str, &str)] = &[
    (
        "signal",
        "AbortSignal",
        "Stops the call at once: its promise rejects with an `AbortError`.",
    ),
    (
        "onProgress",
        "ProgressCallback",
        "Receives progress events: status changes, progress, retries, bytes.",
    ),
];

/// One argument interface. `aliases`: each duration also keeps its old name in milliseconds
/// (`timeoutMs`), deprecated.
fn params_interface(
    group: &Group,
    extends: Option<&str>,
    aliases: bool,
    extras: &[(&str, &str, &str)],
) -> String {
    let extends = extends.map(|e| format!(" extends {e}")).unwrap_or_default();
    let mut out = format!(
        "/** {} */\nexport interface {}{extends} {{\n",
        group.doc, group.name
    );
    let member = |out: &mut String, field: &Field| {
        if !field.doc.is_empty() {
            out.push_str(&format!("  /** {} */\n", field.doc));
        }
        let optional = if field.required { "" } else { "?" };
        out.push_str(&format!(
            "  {}{optional}: {}\n",
            camel(&field.name),
            ts_kind(&field.kind)
        ));
    };
    for field in &group.fields {
        member(&mut out, field);
        if aliases && field.seconds {
            let name = camel(&field.name);
            out.push_str(&format!(
                "  /** @deprecated Use `{name}`, in seconds; this one is in milliseconds. */\n  {name}Ms?: number\n"
            ));
        }
    }
    for (name, ts, doc) in extras {
        out.push_str(&format!("  /** {doc} */\n  {name}?: {ts}\n"));
    }
    out.push_str("}\n");
    out
}

/// The argument interfaces: settings, policies, per-call options, then each operation's
/// params (its arguments and the per-call options).
fn params(bridge: &Value) -> String {
    let (options, settings, poll, retry) = crate::params::settings_and_options(bridge);
    let mut out = String::from(
        "// Arguments, from the bridge's Rust types (removebgvideo::bridge): names in camelCase,\n\
         // durations in seconds.\n\n",
    );
    out.push_str(&params_interface(&settings, None, true, &[]));
    out.push('\n');
    out.push_str(&params_interface(&poll, None, false, &[]));
    out.push('\n');
    out.push_str(&params_interface(&retry, None, false, &[]));
    out.push('\n');
    out.push_str(&params_interface(&options, None, true, CALL_EXTRAS));
    for operation in crate::params::operations(bridge) {
        out.push('\n');
        out.push_str(&params_interface(
            &operation,
            Some("CallOptions"),
            true,
            &[],
        ));
    }
    out.push('\n');
    out
}

/// The whole index.d.ts.
pub fn generate(defs: &Map<String, Value>, bridge: &Value, api: &str) -> String {
    let mut out = String::from(
        "// Types of the `removebgvideo` package. Generated by `cargo xtask codegen` from the JSON Schema\n\
         // (result types), the bridge's schema (argument types) and bindings/node/src/api.d.ts (the\n\
         // API); do not edit.\n\n",
    );
    for name in TYPES {
        if let Some(schema) = defs.get(*name) {
            out.push_str(&interface(name, schema, client_only_fields(name)));
            out.push('\n');
        }
    }
    if let Some(event) = defs.get("Event") {
        out.push_str(&event_union(event));
        out.push('\n');
    }
    out.push_str(&params(bridge));
    out.push_str(api);
    out
}
