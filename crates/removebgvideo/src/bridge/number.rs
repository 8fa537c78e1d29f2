//! Numbers as bindings send them. JSON has no NaN or infinity, but a caller may pass them
//! (`float("inf")`, `Infinity`): the bindings send those as the strings `NaN`, `Infinity` and
//! `-Infinity`, so they reach the same range check as a negative number and get its error,
//! naming the caller's field, instead of failing to parse or silently becoming a default.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A number from a binding, possibly not finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Float(pub f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FloatVisitor;

        impl Visitor<'_> for FloatVisitor {
            type Value = Float;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Float, E> {
                Ok(Float(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Float, E> {
                Ok(Float(value as f64))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Float, E> {
                Ok(Float(value as f64))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Float, E> {
                match value {
                    "NaN" => Ok(Float(f64::NAN)),
                    "Infinity" => Ok(Float(f64::INFINITY)),
                    "-Infinity" => Ok(Float(f64::NEG_INFINITY)),
                    other => Err(E::invalid_type(de::Unexpected::Str(other), &self)),
                }
            }
        }

        deserializer.deserialize_any(FloatVisitor)
    }
}

impl JsonSchema for Float {
    fn schema_name() -> Cow<'static, str> {
        "Float".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number; the strings `NaN`, `Infinity` and `-Infinity` stand for the numbers JSON cannot write (they are refused by the field's range check).",
            "anyOf": [
                { "type": "number" },
                { "enum": ["NaN", "Infinity", "-Infinity"] }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_the_names_of_non_finite_ones_are_read() {
        let read = |json: &str| serde_json::from_str::<Float>(json).map(|f| f.0);
        assert_eq!(read("1.5").unwrap(), 1.5);
        assert_eq!(read("-3").unwrap(), -3.0);
        assert_eq!(read("18446744073709551615").unwrap(), u64::MAX as f64);
        assert!(read(r#""NaN""#).unwrap().is_nan());
        assert_eq!(read(r#""Infinity""#).unwrap(), f64::INFINITY);
        assert_eq!(read(r#""-Infinity""#).unwrap(), f64::NEG_INFINITY);
        let error = read(r#""5""#).unwrap_err().to_string();
        assert!(error.contains("expected a number"), "{error}");
        assert!(read("null").is_err());
    }
}
