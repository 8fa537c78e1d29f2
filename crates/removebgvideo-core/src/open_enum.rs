//! Forward-compatible string enums: known values are variants, anything else is kept verbatim.

/// Declares a string enum whose unknown wire values survive as `Unknown(String)`.
///
/// The server may add a model, a status or an error code at any time; a client that
/// rejects a response because of one new string would break in production. Validation
/// (not deserialization) decides whether an unknown value is acceptable in a request.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the SDK does not know, kept exactly as received.
            Unknown(String),
        }

        impl $name {
            /// Every value this version knows, in documentation order.
            pub const KNOWN: &'static [$name] = &[$( $name::$variant, )+];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(other) => other,
                }
            }

            /// The wire spellings of every known value.
            pub fn known_values() -> &'static [&'static str] {
                &[$( $wire, )+]
            }

            /// Whether this is a value this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => $name::$variant, )+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match $name::from(value.as_str()) {
                    $name::Unknown(_) => $name::Unknown(value),
                    known => known,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // Per-value docs go into the description, so the schema documents each value
                // and editing any of them is caught by the drift check.
                let values: Vec<String> = [$(
                    format!("`{}`: {}", $wire, $crate::open_enum::doc_from_attrs(&[$(stringify!($vmeta)),*])),
                )+].into();
                let description = format!(
                    "{} Values: {}",
                    $crate::open_enum::doc_from_attrs(&[$(stringify!($meta)),*]),
                    values.join(" ")
                );
                schemars::json_schema!({
                    "type": "string",
                    "enum": [$( $wire, )+],
                    "description": description,
                })
            }
        }

        impl $crate::open_enum::OpenEnum for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$name as schemars::JsonSchema>::schema_name()
            }
        }
    };
}
pub(crate) use open_enum;

/// Implemented by every [`open_enum!`] type; lets response schemas accept unknown values.
pub trait OpenEnum: schemars::JsonSchema {
    /// The `$defs` name of the strict schema.
    fn schema_name() -> std::borrow::Cow<'static, str>;
}

/// Schema for a response field of an open enum: the documented values, or any other string.
///
/// Requests are checked strictly (unknown values are errors); responses must keep working
/// when the server adds a value, so their schema says so.
pub fn lenient<T: OpenEnum>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let known = generator.subschema_for::<T>();
    schemars::json_schema!({
        "anyOf": [known, { "type": "string" }],
        "description": format!(
            "One of the documented {} values; a newer server may send another string, which clients keep.",
            <T as OpenEnum>::schema_name()
        ),
    })
}

/// Like [`lenient`] for an optional field.
pub fn lenient_option<T: OpenEnum>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let inner = lenient::<T>(generator);
    schemars::json_schema!({ "anyOf": [inner, { "type": "null" }] })
}

/// Turns the stringified `doc = "..."` attributes captured by the macro into plain text.
#[doc(hidden)]
pub fn doc_from_attrs(attrs: &[&str]) -> String {
    attrs
        .iter()
        .filter_map(|attr| {
            // stringify! may break the line after `=`, hence the trims.
            let rest = attr
                .trim()
                .strip_prefix("doc")?
                .trim_start()
                .strip_prefix('=')?;
            let quoted = rest.trim();
            // `///` comments arrive as raw strings (r"...", r#"..."#); `#[doc = "..."]` as normal.
            match quoted.strip_prefix('r') {
                Some(raw) => {
                    let hashes = raw.len() - raw.trim_start_matches('#').len();
                    let inner = &raw[hashes..raw.len() - hashes];
                    inner
                        .strip_prefix('"')?
                        .strip_suffix('"')
                        .map(str::to_owned)
                }
                None => serde_json::from_str::<String>(quoted).ok(),
            }
        })
        .map(|line| line.trim().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::doc_from_attrs;

    #[test]
    fn doc_attributes_become_one_description() {
        let attrs = [
            "doc =\nr\" The model.\"",
            "doc = r#\" Says \"hi\".\"#",
            "doc = \"plain \\\"q\\\"\"",
        ];
        assert_eq!(
            doc_from_attrs(&attrs),
            "The model. Says \"hi\". plain \"q\""
        );
    }
}
