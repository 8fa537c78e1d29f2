//! The one typed `Background` value and its two wire shapes (flat for create, nested for start).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::open_enum::open_enum;
use crate::validate::{Problem, ProblemCode};

open_enum! {
    /// Background kinds on the wire. Flat `bg_type` (create) uses the presets and `custom`;
    /// the nested `background.type` (start) uses `transparent`, `color` and `image`.
    pub enum BackgroundType {
        /// Keep the alpha channel (needs a format with alpha).
        Transparent => "transparent",
        /// Preset chroma green.
        Green => "green",
        /// Preset white.
        White => "white",
        /// Preset black.
        Black => "black",
        /// Preset chroma blue.
        Blue => "blue",
        /// A custom colour given in `bg_color` (flat shape).
        Custom => "custom",
        /// A custom colour given in `bg_color` or `background.color`.
        Color => "color",
        /// An image given in `bg_image_url` or `background.image_url`.
        Image => "image",
    }
}

impl BackgroundType {
    /// Whether the type is valid in the nested `background.type` (D:api-reference/start-job).
    pub fn allowed_nested(&self) -> bool {
        matches!(
            self,
            BackgroundType::Transparent | BackgroundType::Color | BackgroundType::Image
        )
    }
}

/// A colour with each channel normalized to [0, 1] (D:guides/color-background).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rgb(pub [f64; 3]);

impl Rgb {
    /// Largest per-channel difference for two colours to count as the same: one hex step,
    /// because a colour sent as `#rrggbb` is quantized to 1/255.
    const SAME_COLOUR_TOLERANCE: f64 = 1.0 / 255.0;

    /// From normalized channels; each must be finite and within [0, 1].
    pub fn new(channels: [f64; 3]) -> Result<Self, String> {
        match channels.iter().position(|c| !(0.0..=1.0).contains(c)) {
            None => Ok(Rgb(channels)),
            Some(i) => Err(format!(
                "channel {i} must be between 0 and 1 (got {})",
                channels[i]
            )),
        }
    }

    /// From `#rrggbb` (the `#` is required, hex digits in either case).
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        let digits = hex
            .strip_prefix('#')
            .filter(|d| d.len() == 6 && d.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| format!("must be a colour written #rrggbb (got {hex:?})"))?;
        let channel = |i: usize| {
            // Six ASCII hex digits were checked above, so this cannot fail.
            f64::from(u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0)) / 255.0
        };
        Ok(Rgb([channel(0), channel(2), channel(4)]))
    }

    /// As `#rrggbb`, lower case.
    pub fn to_hex(self) -> String {
        let [r, g, b] = self.0.map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8);
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    fn same_as(self, other: Rgb) -> bool {
        self.0
            .iter()
            .zip(other.0)
            .all(|(a, b)| (a - b).abs() <= Self::SAME_COLOUR_TOLERANCE)
    }
}

/// The preset background colours of the flat `bg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresetColor {
    /// Chroma-key green.
    Green,
    /// White.
    White,
    /// Black.
    Black,
    /// Chroma-key blue.
    Blue,
}

impl PresetColor {
    /// The colour a preset stands for when it must be sent as a colour (the nested shape has
    /// no presets). Green and blue are the broadcast chroma-key values; the API does not
    /// publish its own, so a preset sent through start may differ slightly from create's.
    pub fn rgb(self) -> Rgb {
        match self {
            PresetColor::Green => Rgb::from_hex("#00b140"),
            PresetColor::White => Rgb::from_hex("#ffffff"),
            PresetColor::Black => Rgb::from_hex("#000000"),
            PresetColor::Blue => Rgb::from_hex("#0047bb"),
        }
        .unwrap_or(Rgb([0.0; 3]))
    }

    fn wire(self) -> BackgroundType {
        match self {
            PresetColor::Green => BackgroundType::Green,
            PresetColor::White => BackgroundType::White,
            PresetColor::Black => BackgroundType::Black,
            PresetColor::Blue => BackgroundType::Blue,
        }
    }

    fn from_wire(kind: &BackgroundType) -> Option<Self> {
        match kind {
            BackgroundType::Green => Some(PresetColor::Green),
            BackgroundType::White => Some(PresetColor::White),
            BackgroundType::Black => Some(PresetColor::Black),
            BackgroundType::Blue => Some(PresetColor::Blue),
            _ => None,
        }
    }
}

/// What replaces the removed background: the one value the typed SDK API uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Background {
    /// Keep transparency (the default).
    Transparent,
    /// A preset colour.
    Preset(PresetColor),
    /// A custom colour.
    Color(Rgb),
    /// An image behind the foreground.
    Image(String),
}

/// The flat background fields of a create request.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatBackground {
    /// `bg_type`.
    pub bg_type: BackgroundType,
    /// `bg_color`, for custom colours.
    pub bg_color: Option<Vec<f64>>,
    /// `bg_image_url`, for images.
    pub bg_image_url: Option<String>,
}

/// A colour in the nested shape: `#RRGGBB` or normalized RGB (D:api-reference/start-job).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ColorValue {
    /// `#rrggbb`.
    Hex(#[schemars(regex(pattern = r"^#[0-9A-Fa-f]{6}$"))] String),
    /// Normalized RGB, three numbers in [0, 1].
    Rgb(#[schemars(length(min = 3, max = 3), inner(range(min = 0.0, max = 1.0)))] Vec<f64>),
}

impl ColorValue {
    /// The colour, when well formed.
    pub fn to_rgb(&self) -> Result<Rgb, String> {
        match self {
            ColorValue::Hex(hex) => Rgb::from_hex(hex),
            ColorValue::Rgb(channels) => rgb_from_slice(channels),
        }
    }
}

/// Three normalized channels from a list of any length, with the rule that was broken.
pub(crate) fn rgb_from_slice(channels: &[f64]) -> Result<Rgb, String> {
    let array: [f64; 3] = channels
        .try_into()
        .map_err(|_| format!("must have exactly 3 numbers (got {})", channels.len()))?;
    Rgb::new(array)
}

/// The nested `background` object of a start request (also accepted on create).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = nested_background_rules)]
pub struct NestedBackground {
    /// `transparent`, `color` or `image`.
    #[serde(rename = "type")]
    pub kind: BackgroundType,
    /// The colour, with `type` `color`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<ColorValue>,
    /// The image URL, with `type` `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub image_url: Option<String>,
}

impl Background {
    /// Parses the compact text form used by the CLI and the bindings: `transparent`, a
    /// preset (`green`, `white`, `black`, `blue`), `#rrggbb`, or `image:URL`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if let Some(url) = text.strip_prefix("image:") {
            return Ok(Background::Image(url.to_owned()));
        }
        if text.starts_with('#') {
            return Rgb::from_hex(text).map(Background::Color).map_err(|rule| {
                Error::validation(vec![Problem::error(
                    "/background",
                    ProblemCode::InvalidColor,
                    format!("background {rule}"),
                )])
            });
        }
        match BackgroundType::from(text) {
            BackgroundType::Transparent => Ok(Background::Transparent),
            kind => PresetColor::from_wire(&kind).map(Background::Preset).ok_or_else(|| {
                Error::validation(vec![Problem::error(
                    "/background",
                    ProblemCode::UnknownValue,
                    format!(
                        "background must be transparent, green, white, black, blue, #rrggbb or image:URL (got {text:?})"
                    ),
                )])
            }),
        }
    }

    /// From normalized RGB channels, checked.
    pub fn from_rgb(channels: [f64; 3]) -> Result<Self, Error> {
        Rgb::new(channels).map(Background::Color).map_err(|rule| {
            Error::validation(vec![Problem::error(
                "/background",
                ProblemCode::OutOfRange,
                format!("background colour {rule}"),
            )])
        })
    }

    /// Whether the output keeps an alpha channel.
    pub fn is_transparent(&self) -> bool {
        matches!(self, Background::Transparent)
    }

    /// The flat fields a create request sends (as the official SDKs do).
    pub fn to_flat(&self) -> FlatBackground {
        let (bg_type, bg_color, bg_image_url) = match self {
            Background::Transparent => (BackgroundType::Transparent, None, None),
            Background::Preset(preset) => (preset.wire(), None, None),
            Background::Color(rgb) => (BackgroundType::Custom, Some(rgb.0.to_vec()), None),
            Background::Image(url) => (BackgroundType::Image, None, Some(url.clone())),
        };
        FlatBackground {
            bg_type,
            bg_color,
            bg_image_url,
        }
    }

    /// The nested object a start request sends (as the start page documents). Presets become
    /// their colour, since the nested shape has no presets.
    pub fn to_nested(&self) -> NestedBackground {
        let (kind, color, image_url) = match self {
            Background::Transparent => (BackgroundType::Transparent, None, None),
            Background::Preset(preset) => (
                BackgroundType::Color,
                Some(ColorValue::Hex(preset.rgb().to_hex())),
                None,
            ),
            Background::Color(rgb) => (
                BackgroundType::Color,
                Some(ColorValue::Rgb(rgb.0.to_vec())),
                None,
            ),
            Background::Image(url) => (BackgroundType::Image, None, Some(url.clone())),
        };
        NestedBackground {
            kind,
            color,
            image_url,
        }
    }

    /// Reads the flat fields; `None` when they are absent or incomplete (validation reports why).
    pub fn from_flat(
        bg_type: Option<&BackgroundType>,
        bg_color: Option<&[f64]>,
        bg_image_url: Option<&str>,
    ) -> Option<Self> {
        let colour = || bg_color.and_then(|c| rgb_from_slice(c).ok());
        match bg_type {
            None => colour().map(Background::Color),
            Some(BackgroundType::Transparent) => Some(Background::Transparent),
            Some(BackgroundType::Custom | BackgroundType::Color) => colour().map(Background::Color),
            Some(BackgroundType::Image) => bg_image_url.map(|u| Background::Image(u.to_owned())),
            Some(other) => PresetColor::from_wire(other).map(Background::Preset),
        }
    }

    /// Reads the nested object; `None` when it is incomplete (validation reports why).
    pub fn from_nested(nested: &NestedBackground) -> Option<Self> {
        match &nested.kind {
            BackgroundType::Transparent => Some(Background::Transparent),
            BackgroundType::Color | BackgroundType::Custom => nested
                .color
                .as_ref()
                .and_then(|c| c.to_rgb().ok())
                .map(Background::Color),
            BackgroundType::Image => nested.image_url.clone().map(Background::Image),
            other => PresetColor::from_wire(other).map(Background::Preset),
        }
    }

    /// Whether two backgrounds produce the same output: presets compare by their colour and
    /// colours within one hex step, since either shape may have been quantized to `#rrggbb`.
    pub fn same_as(&self, other: &Background) -> bool {
        match (self.colour(), other.colour()) {
            (Some(a), Some(b)) => a.same_as(b),
            (None, None) => self == other,
            _ => false,
        }
    }

    fn colour(&self) -> Option<Rgb> {
        match self {
            Background::Preset(preset) => Some(preset.rgb()),
            Background::Color(rgb) => Some(*rgb),
            Background::Transparent | Background::Image(_) => None,
        }
    }
}

/// What `check_nested` enforces, with null read as absent: `color` exactly with type `color`,
/// `image_url` exactly with type `image`.
fn nested_background_rules(schema: &mut schemars::Schema) {
    use crate::validate::given;
    use serde_json::json;
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        properties.insert(
            "type".into(),
            json!({
                "type": "string",
                "enum": ["transparent", "color", "image"],
                "description": "`transparent`, `color` (with `color`) or `image` (with `image_url`)."
            }),
        );
    }
    let kind = |kind: &str| json!({ "properties": { "type": { "const": kind } } });
    schema.insert(
        "allOf".into(),
        json!([
            { "if": kind("color"), "then": given("color") },
            { "if": kind("image"), "then": given("image_url") },
            { "if": given("color"), "then": kind("color") },
            { "if": given("image_url"), "then": kind("image") }
        ]),
    );
}
