//! The processing options a job is made with: model, output format, anchor names.

use crate::open_enum::open_enum;

open_enum! {
    /// The segmentation model. `original` is the default; credits per minute differ by model.
    pub enum Model {
        /// Balanced default (60 credits per minute).
        Original => "original",
        /// Faster, lighter model for simple scenes (45 credits per minute).
        Light => "light",
        /// Highest quality; the only model that uses `text_prompt` (180 credits per minute).
        Pro => "pro",
        /// Tuned for people and portraits (45 credits per minute).
        Human => "human",
    }
}

open_enum! {
    /// The container of the output video. `webm` is the default.
    pub enum OutputFormat {
        /// WebM (VP9 with alpha): the default, keeps transparency.
        Webm => "webm",
        /// QuickTime MOV (ProRes 4444): keeps transparency.
        Mov => "mov",
        /// MP4 (H.264): no alpha channel, so it needs an opaque background.
        Mp4 => "mp4",
        /// Animated GIF (1-bit transparency).
        Gif => "gif",
        /// Animated WebP: keeps transparency.
        Webp => "webp",
        /// A ZIP of PNG frames: keeps transparency.
        PngSequence => "png_sequence",
    }
}

impl OutputFormat {
    /// Whether the format can carry an alpha channel (D:guides/composition-json).
    /// Unknown formats are given the benefit of the doubt: the server decides.
    pub fn supports_alpha(&self) -> bool {
        !matches!(self, OutputFormat::Mp4)
    }
}

open_enum! {
    /// Where the foreground sits on the composition canvas.
    pub enum Anchor {
        /// Centred on the canvas.
        Center => "center",
        /// Top-left corner.
        TopLeft => "top-left",
        /// Top edge, centred.
        TopCenter => "top-center",
        /// Top-right corner.
        TopRight => "top-right",
        /// Left edge, centred.
        CenterLeft => "center-left",
        /// Right edge, centred.
        CenterRight => "center-right",
        /// Bottom-left corner.
        BottomLeft => "bottom-left",
        /// Bottom edge, centred.
        BottomCenter => "bottom-center",
        /// Bottom-right corner.
        BottomRight => "bottom-right",
    }
}
