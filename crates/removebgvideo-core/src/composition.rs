//! Composition of the foreground on a canvas (D:guides/composition-json), with its ranges.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::options::Anchor;
use crate::validate::Checker;

/// Canvas sides, in pixels: at least 16, at most 7680 (8K UHD width).
pub const CANVAS_SIDE: (i64, i64) = (16, 7680);
/// Foreground scale factor: above 0, at most 10.
pub const SCALE_MAX: f64 = 10.0;
/// Foreground offset, in pixels, either way: at most one maximal canvas side.
pub const OFFSET_LIMIT: f64 = 7680.0;

/// Where and how big the foreground is drawn on the output canvas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Composition {
    /// The output canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas: Option<Canvas>,
    /// Placement of the foreground.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreground: Option<Foreground>,
}

/// The output canvas size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Canvas {
    /// Width in pixels, 16 to 7680.
    #[serde(deserialize_with = "crate::whole_number::required")]
    #[schemars(range(min = 16, max = 7680))]
    pub width: i64,
    /// Height in pixels, 16 to 7680.
    #[serde(deserialize_with = "crate::whole_number::required")]
    #[schemars(range(min = 16, max = 7680))]
    pub height: i64,
}

/// Placement of the foreground on the canvas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Foreground {
    /// The point of the canvas the foreground is aligned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    /// Scale factor, above 0 and at most 10 (1 keeps the original size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10.0), extend("exclusiveMinimum" = 0))]
    pub scale: Option<f64>,
    /// Shift from the anchor, in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<Offset>,
}

/// A shift in pixels; positive x is right, positive y is down.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Offset {
    /// Horizontal shift, -7680 to 7680.
    #[serde(default)]
    #[schemars(range(min = -7680.0, max = 7680.0))]
    pub x: f64,
    /// Vertical shift, -7680 to 7680.
    #[serde(default)]
    #[schemars(range(min = -7680.0, max = 7680.0))]
    pub y: f64,
}

impl Composition {
    pub(crate) fn check(&self, path: &str, checker: &mut Checker) {
        if let Some(canvas) = &self.canvas {
            let (min, max) = CANVAS_SIDE;
            checker.range(&format!("{path}/canvas/width"), canvas.width, min, max);
            checker.range(&format!("{path}/canvas/height"), canvas.height, min, max);
        }
        if let Some(foreground) = &self.foreground {
            if let Some(anchor) = &foreground.anchor {
                checker.known(
                    &format!("{path}/foreground/anchor"),
                    anchor,
                    anchor.is_known(),
                    Anchor::known_values(),
                );
            }
            if let Some(scale) = foreground.scale
                && !(scale > 0.0 && scale <= SCALE_MAX)
            {
                checker.error(
                    &format!("{path}/foreground/scale"),
                    crate::validate::ProblemCode::OutOfRange,
                    format!("must be above 0 and at most {SCALE_MAX} (got {scale})"),
                );
            }
            if let Some(offset) = &foreground.offset {
                let path = format!("{path}/foreground/offset");
                checker.range(&format!("{path}/x"), offset.x, -OFFSET_LIMIT, OFFSET_LIMIT);
                checker.range(&format!("{path}/y"), offset.y, -OFFSET_LIMIT, OFFSET_LIMIT);
            }
        }
    }
}
