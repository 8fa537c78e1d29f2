//! Request bodies and queries of every endpoint, and the rules each is checked against.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::background::{Background, BackgroundType, NestedBackground};
use crate::composition::Composition;
use crate::error::Error;
use crate::job::JobStatus;
use crate::options::{Model, OutputFormat};
use crate::validate::{Checker, Problem, ProblemCode, Validate, given};

/// The largest upload the API accepts: 500 MB, counted in decimal megabytes so that a file the
/// SDK lets through is never over the server's limit whichever way it counts.
pub const MAX_UPLOAD_BYTES: u64 = 500_000_000;

/// The upload MIME types the API accepts.
pub const UPLOAD_MIME_TYPES: &[&str] = &[
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-msvideo",
];

/// Longest accepted preview, in seconds (preview-only processing is meant to be short).
pub const PREVIEW_MAX_SECONDS: f64 = 60.0;

/// `POST /v1/jobs`: make a job from a video URL.
///
/// The background travels flat (`bg_type`, `bg_color`, `bg_image_url`) as the official SDKs
/// send it; the nested `background` of the API Playground is accepted too, and a request that
/// gives both with different values is rejected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = create_job_rules)]
pub struct CreateJobRequest {
    /// The input video: an absolute http(s) URL, for example the `video_url` an upload returned.
    #[serde(default)]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub video_url: String,
    /// The model; `original` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// The output format; `webm` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// The background kind; `transparent` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_type: Option<BackgroundType>,
    /// Custom colour, normalized RGB: three numbers in [0, 1]; with `bg_type` `custom` or `color`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 3), inner(range(min = 0.0, max = 1.0)))]
    pub bg_color: Option<Vec<f64>>,
    /// Background image URL; with `bg_type` `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub bg_image_url: Option<String>,
    /// The nested background shape of the API Playground; must agree with the flat fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<NestedBackground>,
    /// What to keep, in words; only the `pro` model uses it (a warning otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::not_blank_pattern()))]
    pub text_prompt: Option<String>,
    /// URL that receives `job.started`, `job.completed` and `job.failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub webhook_url: Option<String>,
    /// Start processing at once (the default); false makes a draft that waits for start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_start: Option<bool>,
    /// Your own data, returned as given (an external id, a user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl CreateJobRequest {
    /// A request for this video with every option at its default.
    pub fn new(video_url: impl Into<String>) -> Self {
        CreateJobRequest {
            video_url: video_url.into(),
            ..Default::default()
        }
    }

    /// Sets the background through the flat fields, replacing any earlier background.
    pub fn with_background(mut self, background: &Background) -> Self {
        let flat = background.to_flat();
        self.bg_type = Some(flat.bg_type);
        self.bg_color = flat.bg_color;
        self.bg_image_url = flat.bg_image_url;
        self.background = None;
        self
    }

    /// The background the job will get, whichever shape carried it; transparent by default.
    pub fn effective_background(&self) -> Option<Background> {
        effective_background(
            self.bg_type.as_ref(),
            self.bg_color.as_deref(),
            self.bg_image_url.as_deref(),
            self.background.as_ref(),
        )
        .or(Some(Background::Transparent))
    }
}

impl Validate for CreateJobRequest {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        c.http_url("/video_url", &self.video_url);
        check_options(&mut c, self.model.as_ref(), self.output_format.as_ref());
        check_background(
            &mut c,
            self.bg_type.as_ref(),
            self.bg_color.as_deref(),
            self.bg_image_url.as_deref(),
            self.background.as_ref(),
        );
        // Absent fields mean the defaults: a transparent background.
        let transparent = self
            .bg_type
            .as_ref()
            .is_none_or(|t| *t == BackgroundType::Transparent)
            && self
                .background
                .as_ref()
                .is_none_or(|b| b.kind == BackgroundType::Transparent);
        check_alpha(&mut c, self.output_format.as_ref(), transparent);
        check_prompt(
            &mut c,
            self.text_prompt.as_deref(),
            Some(self.model.clone().unwrap_or(Model::Original)),
        );
        if let Some(url) = &self.webhook_url {
            c.http_url("/webhook_url", url);
        }
        c.finish()
    }
}

/// `POST /v1/jobs/{job_id}/start`: start a draft or restart a failed job; every field optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = start_job_rules)]
pub struct StartJobRequest {
    /// Change the model for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// What to keep, in words; only the `pro` model uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::not_blank_pattern()))]
    pub text_prompt: Option<String>,
    /// The background, nested (as the start page documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<NestedBackground>,
    /// Placement of the foreground on an output canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition: Option<Composition>,
    /// Process only this many seconds, as a preview (above 0, at most 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 60.0), extend("exclusiveMinimum" = 0))]
    pub preview_duration: Option<f64>,
    /// Change the output format (sent by the official SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// Flat background kind (sent by the official SDKs); must agree with `background`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_type: Option<BackgroundType>,
    /// Flat custom colour (sent by the official SDKs), normalized RGB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 3), inner(range(min = 0.0, max = 1.0)))]
    pub bg_color: Option<Vec<f64>>,
    /// Flat background image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub bg_image_url: Option<String>,
    /// Change the webhook URL (sent by the official SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::validate::http_url_pattern()))]
    pub webhook_url: Option<String>,
}

impl StartJobRequest {
    /// Sets the background through the nested object, replacing any earlier background.
    pub fn with_background(mut self, background: &Background) -> Self {
        self.background = Some(background.to_nested());
        self.bg_type = None;
        self.bg_color = None;
        self.bg_image_url = None;
        self
    }
}

impl Validate for StartJobRequest {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        check_options(&mut c, self.model.as_ref(), self.output_format.as_ref());
        check_background(
            &mut c,
            self.bg_type.as_ref(),
            self.bg_color.as_deref(),
            self.bg_image_url.as_deref(),
            self.background.as_ref(),
        );
        // A start that says nothing of the background keeps the job's own, which we cannot see.
        let transparent = self.bg_type == Some(BackgroundType::Transparent)
            || self
                .background
                .as_ref()
                .is_some_and(|b| b.kind == BackgroundType::Transparent);
        check_alpha(&mut c, self.output_format.as_ref(), transparent);
        check_prompt(&mut c, self.text_prompt.as_deref(), self.model.clone());
        if let Some(composition) = &self.composition {
            composition.check("/composition", &mut c);
        }
        if let Some(seconds) = self.preview_duration
            && !(seconds > 0.0 && seconds <= PREVIEW_MAX_SECONDS)
        {
            c.error(
                "/preview_duration",
                ProblemCode::OutOfRange,
                format!(
                    "must be above 0 and at most {PREVIEW_MAX_SECONDS} seconds (got {seconds})"
                ),
            );
        }
        if let Some(url) = &self.webhook_url {
            c.http_url("/webhook_url", url);
        }
        c.finish()
    }
}

/// `GET /v1/jobs`: one page of the key's jobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListJobsQuery {
    /// Page size, 1 to 100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// How many jobs to skip.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    pub offset: Option<u32>,
    /// Only jobs in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

impl Validate for ListJobsQuery {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        if let Some(limit) = self.limit {
            c.range("/limit", limit, 1, 100);
        }
        if let Some(status) = &self.status {
            c.known(
                "/status",
                status,
                status.is_known(),
                JobStatus::known_values(),
            );
        }
        c.finish()
    }
}

/// `GET /v1/usage/summary`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageSummaryQuery {
    /// How many days back, 1 to 90.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schemars(range(min = 1, max = 90))]
    pub days: Option<u32>,
}

impl Validate for UsageSummaryQuery {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        if let Some(days) = self.days {
            c.range("/days", days, 1, 90);
        }
        c.finish()
    }
}

/// `GET /v1/usage/events`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageEventsQuery {
    /// How many events, 1 to 100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

impl Validate for UsageEventsQuery {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        if let Some(limit) = self.limit {
            c.range("/limit", limit, 1, 100);
        }
        c.finish()
    }
}

/// What is known of a file before it is uploaded with `POST /v1/uploads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadFile {
    /// The file name sent in the multipart form.
    pub filename: String,
    /// The MIME type: video/mp4, video/quicktime, video/webm or video/x-msvideo.
    #[schemars(extend("enum" = UPLOAD_MIME_TYPES))]
    pub content_type: String,
    /// The size in bytes: above 0, at most 500 MB.
    #[serde(deserialize_with = "crate::whole_number::required")]
    #[schemars(range(min = 1, max = 500_000_000))]
    pub size: u64,
}

impl UploadFile {
    /// Describes a file, guessing its MIME type from the extension (`None` stays unguessed and
    /// fails validation with a message that names the accepted types).
    pub fn new(filename: impl Into<String>, size: u64) -> Self {
        let filename = filename.into();
        let content_type = guess_video_mime(&filename).unwrap_or("application/octet-stream");
        UploadFile {
            content_type: content_type.to_owned(),
            filename,
            size,
        }
    }
}

/// The accepted video MIME type for a file name's extension.
pub fn guess_video_mime(filename: &str) -> Option<&'static str> {
    let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "mp4" | "m4v" => Some("video/mp4"),
        "mov" | "qt" => Some("video/quicktime"),
        "webm" => Some("video/webm"),
        "avi" => Some("video/x-msvideo"),
        _ => None,
    }
}

impl Validate for UploadFile {
    fn problems(&self) -> Vec<Problem> {
        let mut c = Checker::default();
        c.not_blank("/filename", &self.filename);
        if !UPLOAD_MIME_TYPES.contains(&self.content_type.as_str()) {
            c.error(
                "/content_type",
                ProblemCode::UnsupportedMediaType,
                format!(
                    "must be one of {} (got {:?}); use an .mp4, .mov, .webm or .avi file",
                    UPLOAD_MIME_TYPES.join(", "),
                    self.content_type
                ),
            );
        }
        if self.size == 0 {
            c.error(
                "/size",
                ProblemCode::EmptyFile,
                "must be above 0: the file is empty",
            );
        } else if self.size > MAX_UPLOAD_BYTES {
            c.error(
                "/size",
                ProblemCode::FileTooLarge,
                format!(
                    "must be at most {MAX_UPLOAD_BYTES} bytes (500 MB) (got {})",
                    self.size
                ),
            );
        }
        c.finish()
    }
}

/// Checks a job id before it goes into a URL path.
pub fn validate_job_id(job_id: &str) -> Result<(), Error> {
    let mut c = Checker::default();
    if job_id.trim().is_empty() {
        c.error(
            "/job_id",
            ProblemCode::InvalidJobId,
            "must not be empty or only whitespace",
        );
    } else if job_id.chars().any(char::is_control) {
        c.error(
            "/job_id",
            ProblemCode::InvalidJobId,
            "must not contain control characters",
        );
    } else if job_id == "." || job_id == ".." {
        c.error(
            "/job_id",
            ProblemCode::InvalidJobId,
            "must not be . or .. (a URL resolves those to another path)",
        );
    } else if job_id != job_id.trim() {
        c.error(
            "/job_id",
            ProblemCode::InvalidJobId,
            "must not start or end with whitespace",
        );
    }
    crate::validate::into_result(c.finish()).map(|_| ())
}

/// Checks an `Idempotency-Key` as sent: 1 to
/// [`IDEMPOTENCY_KEY_MAX_BYTES`](crate::http::IDEMPOTENCY_KEY_MAX_BYTES) printable ASCII
/// characters, so it travels unchanged in a header, a server remembers it whole, and derived
/// keys (`KEY:create`) stay valid. `path` names it as the caller gave it.
pub fn idempotency_key_problems(path: &str, key: &[u8]) -> Vec<Problem> {
    let max = crate::http::IDEMPOTENCY_KEY_MAX_BYTES;
    let mut c = Checker::default();
    if key.is_empty() || key.len() > max {
        c.error(
            path,
            ProblemCode::InvalidIdempotencyKey,
            format!(
                "must have 1 to {max} bytes (got {}); use a UUID or another short unique key",
                key.len()
            ),
        );
    } else if !key.iter().all(u8::is_ascii_graphic) {
        c.error(
            path,
            ProblemCode::InvalidIdempotencyKey,
            "must be printable ASCII without spaces",
        );
    }
    c.finish()
}

/// [`idempotency_key_problems`] of a received header, as a `validation_error`.
pub fn validate_idempotency_key(key: &[u8]) -> Result<(), Error> {
    crate::validate::into_result(idempotency_key_problems("/Idempotency-Key", key)).map(|_| ())
}

fn check_options(c: &mut Checker, model: Option<&Model>, format: Option<&OutputFormat>) {
    if let Some(model) = model {
        c.known("/model", model, model.is_known(), Model::known_values());
    }
    if let Some(format) = format {
        c.known(
            "/output_format",
            format,
            format.is_known(),
            OutputFormat::known_values(),
        );
    }
}

fn check_alpha(c: &mut Checker, format: Option<&OutputFormat>, transparent: bool) {
    if transparent && format.is_some_and(|f| !f.supports_alpha()) {
        c.error(
            "/output_format",
            ProblemCode::AlphaUnsupported,
            "mp4 cannot keep a transparent background: choose webm, mov, gif, webp or png_sequence, or an opaque background",
        );
    }
}

fn check_prompt(c: &mut Checker, prompt: Option<&str>, model: Option<Model>) {
    let Some(prompt) = prompt else { return };
    c.not_blank("/text_prompt", prompt);
    // A prompt with another model is not invalid, only unused: warn, do not block. The model
    // may also be switched to pro at start, as the API Playground does.
    if let Some(model) = model.filter(|m| *m != Model::Pro && m.is_known()) {
        c.warning(
            "/text_prompt",
            ProblemCode::PromptIgnored,
            format!("is only used by the pro model and will be ignored by {model}"),
        );
    }
}

/// The background described by whichever shapes are present (flat first), when complete.
fn effective_background(
    bg_type: Option<&BackgroundType>,
    bg_color: Option<&[f64]>,
    bg_image_url: Option<&str>,
    nested: Option<&NestedBackground>,
) -> Option<Background> {
    Background::from_flat(bg_type, bg_color, bg_image_url)
        .or_else(|| nested.and_then(Background::from_nested))
}

fn check_background(
    c: &mut Checker,
    bg_type: Option<&BackgroundType>,
    bg_color: Option<&[f64]>,
    bg_image_url: Option<&str>,
    nested: Option<&NestedBackground>,
) {
    let wants_colour = matches!(
        bg_type,
        Some(BackgroundType::Custom | BackgroundType::Color)
    );
    let wants_image = bg_type == Some(&BackgroundType::Image);
    if let Some(kind) = bg_type {
        c.known(
            "/bg_type",
            kind,
            kind.is_known(),
            BackgroundType::known_values(),
        );
    }
    match bg_color {
        Some(channels) if wants_colour => c.rgb_list("/bg_color", channels),
        Some(_) => c.error(
            "/bg_color",
            ProblemCode::NotApplicable,
            "is only used with bg_type custom or color",
        ),
        None if wants_colour => c.error(
            "/bg_color",
            ProblemCode::Required,
            "is required when bg_type is custom or color",
        ),
        None => {}
    }
    match bg_image_url {
        Some(url) if wants_image => c.http_url("/bg_image_url", url),
        Some(_) => c.error(
            "/bg_image_url",
            ProblemCode::NotApplicable,
            "is only used with bg_type image",
        ),
        None if wants_image => c.error(
            "/bg_image_url",
            ProblemCode::Required,
            "is required when bg_type is image",
        ),
        None => {}
    }
    if let Some(nested) = nested {
        check_nested(c, nested);
        let flat_given = bg_type.is_some() || bg_color.is_some() || bg_image_url.is_some();
        let flat = Background::from_flat(bg_type, bg_color, bg_image_url);
        let nested_value = Background::from_nested(nested);
        if let (true, Some(flat), Some(nested_value)) = (flat_given, flat, nested_value)
            && !flat.same_as(&nested_value)
        {
            c.error(
                "/background",
                ProblemCode::ConflictingBackground,
                "disagrees with bg_type/bg_color/bg_image_url: give the background once, or the same in both shapes",
            );
        }
    }
}

fn check_nested(c: &mut Checker, nested: &NestedBackground) {
    let kind = &nested.kind;
    if !kind.allowed_nested() {
        c.error(
            "/background/type",
            ProblemCode::UnknownValue,
            format!(
                "must be one of transparent, color, image (got {:?})",
                kind.as_str()
            ),
        );
    }
    let is_colour = *kind == BackgroundType::Color;
    let is_image = *kind == BackgroundType::Image;
    match &nested.color {
        Some(crate::background::ColorValue::Rgb(channels)) if is_colour => {
            c.rgb_list("/background/color", channels)
        }
        Some(colour) if is_colour => {
            if let Err(rule) = colour.to_rgb() {
                c.error("/background/color", ProblemCode::InvalidColor, rule);
            }
        }
        Some(_) => c.error(
            "/background/color",
            ProblemCode::NotApplicable,
            "is only used with background.type color",
        ),
        None if is_colour => c.error(
            "/background/color",
            ProblemCode::Required,
            "is required when background.type is color",
        ),
        None => {}
    }
    match &nested.image_url {
        Some(url) if is_image => c.http_url("/background/image_url", url),
        Some(_) => c.error(
            "/background/image_url",
            ProblemCode::NotApplicable,
            "is only used with background.type image",
        ),
        None if is_image => c.error(
            "/background/image_url",
            ProblemCode::Required,
            "is required when background.type is image",
        ),
        None => {}
    }
}

/// The rules between flat background fields, in JSON Schema (shared by create and start): what
/// `check_background` enforces, with null read as absent.
fn flat_background_rules() -> Vec<serde_json::Value> {
    let colour_kind = json!({ "required": ["bg_type"], "properties": { "bg_type": { "enum": ["custom", "color"] } } });
    let image_kind =
        json!({ "required": ["bg_type"], "properties": { "bg_type": { "const": "image" } } });
    vec![
        json!({ "if": colour_kind, "then": given("bg_color") }),
        json!({ "if": image_kind, "then": given("bg_image_url") }),
        json!({ "if": given("bg_color"), "then": colour_kind }),
        json!({ "if": given("bg_image_url"), "then": image_kind }),
        // Both shapes at once must agree. JSON Schema cannot compare two colours or two URLs,
        // so it accepts both together only when both say transparent; the server also accepts
        // the same colour or image given twice.
        json!({
            "if": { "allOf": [
                given("background"),
                { "anyOf": [given("bg_type"), given("bg_color"), given("bg_image_url")] }
            ] },
            "then": {
                "required": ["bg_type"],
                "properties": {
                    "bg_type": { "const": "transparent" },
                    "background": { "properties": { "type": { "const": "transparent" } } }
                }
            }
        }),
    ]
}

/// `output_format` is `mp4`, which has no alpha channel.
fn mp4() -> serde_json::Value {
    json!({ "required": ["output_format"], "properties": { "output_format": { "const": "mp4" } } })
}

fn create_job_rules(schema: &mut Schema) {
    let mut rules = flat_background_rules();
    // mp4 has no alpha: with mp4, one of the shapes must name an opaque background, because
    // an absent (or null) background means transparent.
    rules.push(json!({
        "if": mp4(),
        "then": { "anyOf": [
            { "required": ["bg_type"], "properties": { "bg_type": { "type": "string", "not": { "const": "transparent" } } } },
            { "required": ["background"], "properties": { "background": { "type": "object", "properties": { "type": { "not": { "const": "transparent" } } } } } }
        ] }
    }));
    schema.insert("required".into(), json!(["video_url"]));
    schema.insert("allOf".into(), serde_json::Value::Array(rules));
    // `#[serde(default)]` lets an absent video_url reach validation, which names it; the schema
    // requires it, so the empty default is no value a client may rely on (nor a valid one).
    if let Some(video_url) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("video_url"))
        .and_then(|v| v.as_object_mut())
    {
        video_url.remove("default");
    }
}

fn start_job_rules(schema: &mut Schema) {
    let mut rules = flat_background_rules();
    // On start an absent background keeps the job's own; only an explicit transparent is wrong.
    rules.push(json!({
        "if": mp4(),
        "then": { "properties": {
            "bg_type": { "not": { "const": "transparent" } },
            "background": { "properties": { "type": { "not": { "const": "transparent" } } } }
        } }
    }));
    schema.insert("allOf".into(), serde_json::Value::Array(rules));
}
