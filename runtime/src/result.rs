//! The per-frame result of the pipeline and its JSON-lines form.
//!
//! [`FrameResult`] is a fixed-size value (no heap: top-k lists are
//! `heapless::Vec`s) that the frame loop fills in place every frame and hands
//! to the outputs ([`crate::outputs`]). [`FrameResult::write_json`] writes the
//! one-line JSON object documented in `runtime/OUTPUTS.md` into a reused
//! `String` (cleared first; no allocation once the buffer has grown to its
//! working size). Names (category, attribute, landmark slot, shop item) come
//! from a [`Names`] view so that this module depends neither on the model
//! engine nor on the shop table type.

use std::fmt::{self, Write};

use deepfashion::contract::{Labels, LANDMARK_SLOTS, NUM_LANDMARKS};
use deepfashion::preprocess::CropBox;

/// Capacity of [`FrameResult::categories`] (top-k categories).
pub const MAX_CATEGORIES: usize = 5;
/// Capacity of [`FrameResult::attributes`] (top-k attributes).
pub const MAX_ATTRIBUTES: usize = 10;
/// Capacity of [`FrameResult::matches`] (top-k shop items).
pub const MAX_MATCHES: usize = 10;

/// A shop table search hit (item index and similarity), as returned by
/// the shop table search.
pub use deepfashion::shop_table::Match;

/// One landmark in frame pixel coordinates with its visibility
/// probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LandmarkOut {
    /// X in frame pixels.
    pub x: f32,
    /// Y in frame pixels.
    pub y: f32,
    /// Probabilities of `visible`, `occluded`, `truncated`
    /// (`contract::VISIBILITY_CLASSES` order).
    pub visibility: [f32; 3],
}

impl LandmarkOut {
    /// Whether `visible` is the most probable class.
    pub fn is_visible(&self) -> bool {
        let [v, o, t] = self.visibility;
        v >= o && v >= t
    }
}

/// A label index with its probability (categories, attributes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tag {
    /// Index into the model's label list.
    pub index: u16,
    /// Probability in [0, 1].
    pub score: f32,
}

/// Time spent per stage of one frame, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageLatency {
    /// Grabbing and decoding the camera frame.
    pub capture_us: u32,
    /// Crop, resize, normalize.
    pub preprocess_us: u32,
    /// Running the network.
    pub inference_us: u32,
    /// Decoding the outputs (landmarks back to frame pixels, top-k).
    pub decode_us: u32,
    /// Shop table search.
    pub search_us: u32,
    /// Whole frame, capture to result.
    pub total_us: u32,
}

/// Everything the pipeline knows about one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameResult {
    /// Frame sequence number (from 1 for the first frame of a source).
    pub frame: u64,
    /// Capture time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Region of interest the network saw, in frame pixels.
    pub roi: CropBox,
    /// The 8 landmarks in `contract::LANDMARK_SLOTS` order.
    pub landmarks: [LandmarkOut; NUM_LANDMARKS],
    /// Top-k categories, descending score.
    pub categories: heapless::Vec<Tag, MAX_CATEGORIES>,
    /// Top-k attributes, descending score.
    pub attributes: heapless::Vec<Tag, MAX_ATTRIBUTES>,
    /// Top-k shop items, descending score (empty without a table).
    pub matches: heapless::Vec<Match, MAX_MATCHES>,
    /// Per-stage timings.
    pub latency: StageLatency,
}

impl Default for FrameResult {
    fn default() -> Self {
        Self {
            frame: 0,
            timestamp_ms: 0,
            width: 0,
            height: 0,
            roi: CropBox {
                x0: 0.0,
                y0: 0.0,
                side: 0.0,
            },
            landmarks: [LandmarkOut::default(); NUM_LANDMARKS],
            categories: heapless::Vec::new(),
            attributes: heapless::Vec::new(),
            matches: heapless::Vec::new(),
            latency: StageLatency::default(),
        }
    }
}

impl FrameResult {
    /// The top category index, if any.
    pub fn top_category(&self) -> Option<u16> {
        self.categories.first().map(|t| t.index)
    }

    /// Write this result as one JSON object (no trailing newline) into
    /// `out`, which is cleared first. Allocates only if `out` must grow.
    pub fn write_json(&self, names: &Names<'_>, out: &mut String) {
        out.clear();
        // Writing into a String cannot fail.
        let _ = self.write_json_to(names, out);
    }

    /// Write this result as one JSON object (no trailing newline) to any
    /// `fmt::Write` (appending).
    pub fn write_json_to(&self, names: &Names<'_>, w: &mut impl Write) -> fmt::Result {
        w.write_str("{\"ts\":")?;
        write_int(w, self.timestamp_ms)?;
        w.write_str(",\"frame\":")?;
        write_int(w, self.frame)?;
        w.write_str(",\"width\":")?;
        write_int(w, self.width)?;
        w.write_str(",\"height\":")?;
        write_int(w, self.height)?;
        w.write_str(",\"roi\":[")?;
        write_f32(w, self.roi.x0)?;
        w.write_char(',')?;
        write_f32(w, self.roi.y0)?;
        w.write_char(',')?;
        write_f32(w, self.roi.side)?;
        w.write_str("],\"landmarks\":[")?;
        for (i, lm) in self.landmarks.iter().enumerate() {
            if i > 0 {
                w.write_char(',')?;
            }
            w.write_str("{\"slot\":")?;
            write_str(w, LANDMARK_SLOTS[i])?;
            w.write_str(",\"x\":")?;
            write_f32(w, lm.x)?;
            w.write_str(",\"y\":")?;
            write_f32(w, lm.y)?;
            w.write_str(",\"visible\":")?;
            w.write_str(if lm.is_visible() { "true" } else { "false" })?;
            w.write_str(",\"p\":[")?;
            for (j, p) in lm.visibility.iter().enumerate() {
                if j > 0 {
                    w.write_char(',')?;
                }
                write_f32(w, *p)?;
            }
            w.write_str("]}")?;
        }
        w.write_str("],\"categories\":")?;
        write_tags(w, &self.categories, |i| names.category(i))?;
        w.write_str(",\"attributes\":")?;
        write_tags(w, &self.attributes, |i| names.attribute(i))?;
        w.write_str(",\"matches\":[")?;
        for (i, m) in self.matches.iter().enumerate() {
            if i > 0 {
                w.write_char(',')?;
            }
            w.write_str("{\"index\":")?;
            write_int(w, m.index)?;
            w.write_str(",\"id\":")?;
            write_opt_str(w, names.shop.and_then(|s| s.item_id(m.index)))?;
            w.write_str(",\"name\":")?;
            write_opt_str(w, names.shop.and_then(|s| s.item_name(m.index)))?;
            w.write_str(",\"score\":")?;
            write_f32(w, m.score)?;
            w.write_char('}')?;
        }
        let l = &self.latency;
        w.write_str("],\"latency_us\":{\"capture\":")?;
        write_int(w, l.capture_us)?;
        w.write_str(",\"preprocess\":")?;
        write_int(w, l.preprocess_us)?;
        w.write_str(",\"inference\":")?;
        write_int(w, l.inference_us)?;
        w.write_str(",\"decode\":")?;
        write_int(w, l.decode_us)?;
        w.write_str(",\"search\":")?;
        write_int(w, l.search_us)?;
        w.write_str(",\"total\":")?;
        write_int(w, l.total_us)?;
        w.write_str("}}")
    }
}

/// Names of shop items, looked up by table index. Implemented by the shop
/// table wrapper of the runtime (or by a closure-backed adapter in tests).
pub trait ShopNames: Send + Sync {
    /// The item id (e.g. `id_00000123`) of item `index`, if known.
    fn item_id(&self, index: u32) -> Option<&str>;
    /// The display name of item `index`, if the table carries one.
    fn item_name(&self, index: u32) -> Option<&str>;
}

/// Shop names held in two vectors (ids and names, by index): a simple
/// [`ShopNames`] for tests and small tables.
#[derive(Debug, Clone, Default)]
pub struct ShopNameList {
    /// Item ids by index.
    pub ids: Vec<String>,
    /// Item names by index (may be shorter than `ids`).
    pub names: Vec<String>,
}

impl ShopNames for ShopNameList {
    fn item_id(&self, index: u32) -> Option<&str> {
        self.ids.get(index as usize).map(String::as_str)
    }
    fn item_name(&self, index: u32) -> Option<&str> {
        self.names.get(index as usize).map(String::as_str)
    }
}

/// The names used when writing results: the model's labels and, if a shop
/// table is loaded, its item names. Unknown indices are written as `null`.
#[derive(Clone, Copy, Default)]
pub struct Names<'a> {
    /// Category and attribute labels of the model (from its metadata).
    pub labels: Option<&'a Labels>,
    /// Shop item ids and names.
    pub shop: Option<&'a dyn ShopNames>,
}

impl fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Names")
            .field("labels", &self.labels.is_some())
            .field("shop", &self.shop.is_some())
            .finish()
    }
}

impl<'a> Names<'a> {
    /// Names from the model labels and an optional shop table.
    pub fn new(labels: &'a Labels, shop: Option<&'a dyn ShopNames>) -> Self {
        Self {
            labels: Some(labels),
            shop,
        }
    }

    /// Name of category `index`.
    pub fn category(&self, index: u16) -> Option<&'a str> {
        self.labels
            .and_then(|l| l.categories.get(index as usize))
            .map(|c| c.name.as_str())
    }

    /// Name of attribute `index`.
    pub fn attribute(&self, index: u16) -> Option<&'a str> {
        self.labels
            .and_then(|l| l.attributes.get(index as usize))
            .map(|a| a.name.as_str())
    }
}

fn write_tags<'n>(
    w: &mut impl Write,
    tags: &[Tag],
    name: impl Fn(u16) -> Option<&'n str>,
) -> fmt::Result {
    w.write_char('[')?;
    for (i, t) in tags.iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        w.write_str("{\"index\":")?;
        write_int(w, t.index)?;
        w.write_str(",\"name\":")?;
        write_opt_str(w, name(t.index))?;
        w.write_str(",\"score\":")?;
        write_f32(w, t.score)?;
        w.write_char('}')?;
    }
    w.write_char(']')
}

fn write_int(w: &mut impl Write, v: impl itoa::Integer) -> fmt::Result {
    w.write_str(itoa::Buffer::new().format(v))
}

/// Finite floats in their shortest round-trip form; NaN and infinities as
/// `null` (JSON has no such numbers).
pub(crate) fn write_f32(w: &mut impl Write, v: f32) -> fmt::Result {
    if v.is_finite() {
        w.write_str(ryu::Buffer::new().format_finite(v))
    } else {
        w.write_str("null")
    }
}

fn write_opt_str(w: &mut impl Write, s: Option<&str>) -> fmt::Result {
    match s {
        Some(s) => write_str(w, s),
        None => w.write_str("null"),
    }
}

/// A JSON string literal with the required escapes.
pub(crate) fn write_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => "",
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        if esc.is_empty() {
            write!(w, "\\u{:04x}", c as u32)?;
        } else {
            w.write_str(esc)?;
        }
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])?;
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_quote_characters() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\nd\u{1}e\u{2028}é").unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001e\\u2028é\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}e\u{2028}é");
    }

    #[test]
    fn non_finite_floats_are_null() {
        let mut s = String::new();
        write_f32(&mut s, f32::NAN).unwrap();
        write_f32(&mut s, 0.25).unwrap();
        assert_eq!(s, "null0.25");
    }
}
