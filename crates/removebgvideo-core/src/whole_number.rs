//! Whole numbers as JSON Schema counts them: `710` and `710.0` are the same integer, so a field
//! the published schema types `integer` accepts either spelling. serde alone refuses `710.0`
//! for an integer type, which made the server reject requests the schema allows (JavaScript and
//! many JSON encoders write whole floats with a `.0`). A fraction, or a value outside the Rust
//! type, is still refused, naming the type.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// For `#[serde(deserialize_with = "crate::whole_number::required")]` on an integer field.
pub(crate) fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    deserializer.deserialize_any(WholeVisitor(PhantomData))
}

/// For `#[serde(default, deserialize_with = "crate::whole_number::optional")]` on an
/// `Option` of an integer (null stays absent).
pub(crate) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    deserializer.deserialize_option(OptionVisitor(PhantomData))
}

struct WholeVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> WholeVisitor<T> {
    fn fit<E: de::Error>(value: i128) -> Result<T, E> {
        T::try_from(value).map_err(|_| {
            // Beyond i64 serde has no `Unexpected` for the number; its text is shown instead.
            let text = value.to_string();
            let unexpected = i64::try_from(value)
                .map(Unexpected::Signed)
                .or_else(|_| u64::try_from(value).map(Unexpected::Unsigned))
                .unwrap_or(Unexpected::Other(&text));
            E::invalid_value(unexpected, &Expected::<T>(PhantomData))
        })
    }
}

/// What an error says was expected: the Rust type's name (`u32`, `i64`), as serde says it.
struct Expected<T>(PhantomData<T>);

impl<T> de::Expected for Expected<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(std::any::type_name::<T>())
    }
}

impl<'de, T: TryFrom<i128>> Visitor<'de> for WholeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number ({})", std::any::type_name::<T>())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        Self::fit(i128::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        Self::fit(i128::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        // 2^127 bounds i128; every f64 below it with no fraction converts exactly.
        const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
        if value.is_finite() && value.fract() == 0.0 && value.abs() < LIMIT {
            Self::fit(value as i128)
        } else {
            Err(E::invalid_type(Unexpected::Float(value), &self))
        }
    }
}

struct OptionVisitor<T>(PhantomData<T>);

impl<'de, T: TryFrom<i128>> Visitor<'de> for OptionVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number ({}) or null", std::any::type_name::<T>())
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        required(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::required")]
        side: i64,
        #[serde(default, deserialize_with = "super::optional")]
        count: Option<u32>,
    }

    fn parse(value: serde_json::Value) -> Result<Sample, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        assert_eq!(
            parse(json!({ "side": 710.0, "count": 3.0 })),
            Ok(Sample {
                side: 710,
                count: Some(3)
            })
        );
        assert_eq!(
            parse(json!({ "side": -16, "count": null })),
            Ok(Sample {
                side: -16,
                count: None
            })
        );
        assert_eq!(
            parse(json!({ "side": 1 })),
            Ok(Sample {
                side: 1,
                count: None
            })
        );
        let fraction = parse(json!({ "side": 710.5 })).unwrap_err();
        assert!(fraction.contains("710.5"), "{fraction}");
        assert!(fraction.contains("whole number"), "{fraction}");
        assert!(parse(json!({ "side": 1e300 })).is_err());
        assert!(parse(json!({ "side": "7" })).is_err());
    }

    #[test]
    fn values_outside_the_rust_type_name_it() {
        let error = parse(json!({ "side": 1, "count": 4_294_967_296u64 })).unwrap_err();
        assert!(
            error.contains("4294967296") && error.contains("u32"),
            "{error}"
        );
        let error = parse(json!({ "side": 1, "count": -1 })).unwrap_err();
        assert!(error.contains("-1") && error.contains("u32"), "{error}");
        let error = parse(json!({ "side": 18_446_744_073_709_551_615u64 })).unwrap_err();
        assert!(error.contains("i64"), "{error}");
        assert_eq!(
            parse(json!({ "side": 1, "count": 4_294_967_295u64 })).map(|s| s.count),
            Ok(Some(u32::MAX))
        );
    }
}
