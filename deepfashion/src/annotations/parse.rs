//! Row parsers: one pure function per kind of annotation line.
//!
//! Every function takes the whitespace-separated tokens of one line (see
//! [`tokens`]) or the raw line, and returns the typed row or a message that
//! says what is wrong (the caller adds file and line). None of them panics,
//! whatever the input (checked by property tests).

use super::{Landmark, LandmarkState};
use crate::contract::NUM_LANDMARKS;

/// Split a line on runs of ASCII whitespace (padded columns, trailing
/// spaces and `\r` all disappear).
pub fn tokens(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace().collect()
}

/// Parse an unsigned integer that may be zero-padded (`072`).
pub fn uint(tok: &str, what: &str) -> Result<u64, String> {
    tok.parse::<u64>()
        .map_err(|_| format!("{what}: expected a non-negative integer, found `{tok}`"))
}

/// Parse a finite number (zero-padded integers such as `072` included).
pub fn number(tok: &str, what: &str) -> Result<f32, String> {
    match tok.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{what}: expected a number, found `{tok}`")),
    }
}

fn expect_len(toks: &[&str], n: usize, layout: &str) -> Result<(), String> {
    if toks.len() == n {
        Ok(())
    } else {
        Err(format!(
            "expected {n} columns ({layout}), found {}",
            toks.len()
        ))
    }
}

/// The count line at the top of every `list_*.txt`: one integer.
pub fn count_line(line: &str) -> Result<usize, String> {
    let t = tokens(line);
    if t.len() != 1 {
        return Err(format!(
            "expected the count line (one integer), found {} tokens",
            t.len()
        ));
    }
    let n = uint(t[0], "count")?;
    usize::try_from(n).map_err(|_| format!("count {n} too large"))
}

/// A column-name line; fails when the line looks like a data row (the
/// header is missing), i.e. its first token names an image.
pub fn header_line(line: &str) -> Result<(), String> {
    let t = tokens(line);
    let Some(first) = t.first() else {
        return Err("expected the column-name line, found an empty line".into());
    };
    let lower = first.to_ascii_lowercase();
    if [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)) || count_line(line).is_ok() {
        return Err(format!(
            "expected the column-name line, found a data row starting with `{first}`"
        ));
    }
    Ok(())
}

/// A label line of `list_category_cloth.txt` / `list_attr_cloth.txt`: the
/// name is everything before the last token (it may contain spaces), the
/// last token is the type number.
pub fn label_line(line: &str) -> Result<(String, u8), String> {
    let t = tokens(line);
    if t.len() < 2 {
        return Err(format!(
            "expected `name type` (name may contain spaces), found {} tokens",
            t.len()
        ));
    }
    let ty = uint(t[t.len() - 1], "type")?;
    let ty = u8::try_from(ty).map_err(|_| format!("type {ty} out of range"))?;
    Ok((t[..t.len() - 1].join(" "), ty))
}

/// `image status` (C&A and landmark-benchmark partitions).
pub fn image_status(toks: &[&str]) -> Result<(String, String), String> {
    expect_len(toks, 2, "image_name evaluation_status")?;
    Ok((toks[0].to_string(), toks[1].to_string()))
}

/// `image label` with a 1-based label (`list_category_img.txt`); returns
/// the label as written.
pub fn image_label(toks: &[&str]) -> Result<(String, u64), String> {
    expect_len(toks, 2, "image_name category_label")?;
    Ok((toks[0].to_string(), uint(toks[1], "category_label")?))
}

/// `image v_1 .. v_n` with values 1, -1 or 0 (`list_attr_img.txt`).
pub fn image_attributes(toks: &[&str], n: usize) -> Result<(String, Vec<i8>), String> {
    expect_len(
        toks,
        n.saturating_add(1),
        &format!("image_name and {n} attribute values"),
    )?;
    let vals = toks[1..]
        .iter()
        .enumerate()
        .map(|(i, t)| match *t {
            "1" => Ok(1),
            "-1" => Ok(-1),
            "0" => Ok(0),
            other => Err(format!(
                "attribute {}: expected 1, -1 or 0, found `{other}`",
                i + 1
            )),
        })
        .collect::<Result<Vec<i8>, String>>()?;
    Ok((toks[0].to_string(), vals))
}

fn bbox_of(toks: &[&str]) -> Result<[f32; 4], String> {
    let names = ["x_1", "y_1", "x_2", "y_2"];
    let mut b = [0f32; 4];
    for i in 0..4 {
        b[i] = number(toks[i], names[i])?;
    }
    Ok(b)
}

/// `image x_1 y_1 x_2 y_2` (C&A and landmark-benchmark `list_bbox.txt`).
pub fn image_bbox(toks: &[&str]) -> Result<(String, [f32; 4]), String> {
    expect_len(toks, 5, "image_name x_1 y_1 x_2 y_2")?;
    Ok((toks[0].to_string(), bbox_of(&toks[1..])?))
}

/// A typed bbox row: `image clothes_type extra x_1 y_1 x_2 y_2`, where
/// `extra` is the pose type (In-shop) or source type (consumer-to-shop).
pub fn image_typed_bbox(toks: &[&str]) -> Result<(String, u8, u8, [f32; 4]), String> {
    expect_len(
        toks,
        7,
        "image_name clothes_type pose/source_type x_1 y_1 x_2 y_2",
    )?;
    let ct = clothes_type(toks[1])?;
    let extra = uint(toks[2], "pose/source type")?;
    let extra =
        u8::try_from(extra).map_err(|_| format!("pose/source type {extra} out of range"))?;
    Ok((toks[0].to_string(), ct, extra, bbox_of(&toks[3..])?))
}

/// A clothes type: 1 upper, 2 lower, 3 full.
pub fn clothes_type(tok: &str) -> Result<u8, String> {
    match uint(tok, "clothes_type")? {
        v @ 1..=3 => Ok(v as u8),
        v => Err(format!("clothes_type must be 1, 2 or 3, found {v}")),
    }
}

/// The canonical slots filled by a clothes type's landmarks, in file order.
pub fn slots_of(clothes_type: u8) -> &'static [usize] {
    match clothes_type {
        1 => &[0, 1, 2, 3, 6, 7],
        2 => &[4, 5, 6, 7],
        _ => &[0, 1, 2, 3, 4, 5, 6, 7],
    }
}

/// A parsed landmark row.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkRow {
    /// Image name.
    pub image: String,
    /// 1 upper, 2 lower, 3 full.
    pub clothes_type: u8,
    /// The variation type when the row has that column.
    pub variation: Option<u8>,
    /// The 8 canonical slots.
    pub landmarks: [Landmark; NUM_LANDMARKS],
}

/// `image clothes_type [variation_type] (visibility x y) x K`, K = 6, 4 or 8
/// for clothes type 1, 2, 3. Whether the variation column is present is
/// decided by the token count: after the image and clothes type, a count
/// `3K` means no variation column, `3K + 1` means one. Rows padded to 8
/// triples whatever the type (`24` / `25`) are accepted too; the padding
/// triples beyond K are ignored.
pub fn landmark_row(toks: &[&str]) -> Result<LandmarkRow, String> {
    if toks.len() < 2 {
        return Err(format!(
            "expected `image_name clothes_type [variation_type] (visibility x y)...`, found {} tokens",
            toks.len()
        ));
    }
    let ct = clothes_type(toks[1])?;
    let slots = slots_of(ct);
    let k = slots.len();
    let rest = &toks[2..];
    let (variation, triples) = match rest.len() {
        n if n == 3 * k || n == 3 * NUM_LANDMARKS => (None, rest),
        n if n == 3 * k + 1 || n == 3 * NUM_LANDMARKS + 1 => {
            let v = uint(rest[0], "variation_type")?;
            let v = u8::try_from(v).map_err(|_| format!("variation_type {v} out of range"))?;
            (Some(v), &rest[1..])
        }
        n => {
            return Err(format!(
                "clothes_type {ct} needs {k} (visibility x y) triples: expected {} or {} columns \
                 after the image name (without / with variation_type), found {}",
                3 * k + 1,
                3 * k + 2,
                n + 1
            ))
        }
    };
    let mut out = [Landmark::ABSENT; NUM_LANDMARKS];
    for (i, &slot) in slots.iter().enumerate() {
        let t = &triples[3 * i..3 * i + 3];
        let state = match uint(t[0], "landmark visibility")? {
            0 => LandmarkState::Visible,
            1 => LandmarkState::Occluded,
            2 => LandmarkState::Truncated,
            v => {
                return Err(format!(
                    "landmark {}: visibility must be 0, 1 or 2, found {v}",
                    i + 1
                ))
            }
        };
        out[slot] = Landmark {
            state,
            x: number(t[1], "landmark x")?,
            y: number(t[2], "landmark y")?,
        };
    }
    Ok(LandmarkRow {
        image: toks[0].to_string(),
        clothes_type: ct,
        variation,
        landmarks: out,
    })
}

/// `image item_id status` (In-shop partition).
pub fn inshop_partition(toks: &[&str]) -> Result<(String, String, String), String> {
    expect_len(toks, 3, "image_name item_id evaluation_status")?;
    Ok((toks[0].into(), toks[1].into(), toks[2].into()))
}

/// `consumer_image shop_image item_id status` (consumer-to-shop partition).
pub fn consumer2shop_partition(toks: &[&str]) -> Result<[String; 4], String> {
    expect_len(
        toks,
        4,
        "image_pair_name_1 image_pair_name_2 item_id evaluation_status",
    )?;
    Ok([
        toks[0].into(),
        toks[1].into(),
        toks[2].into(),
        toks[3].into(),
    ])
}

/// One item id per line (`list_item_*.txt`).
pub fn item_line(toks: &[&str]) -> Result<String, String> {
    expect_len(toks, 1, "item_id")?;
    Ok(toks[0].into())
}

/// One image name per line (fine `train.txt` / `val.txt` / `test.txt`).
pub fn image_line(toks: &[&str]) -> Result<String, String> {
    expect_len(toks, 1, "image_name")?;
    Ok(toks[0].into())
}

/// A fine attribute row: `n` values, each 0 or 1.
pub fn fine_attributes(toks: &[&str], n: usize) -> Result<Vec<i8>, String> {
    expect_len(toks, n, &format!("{n} attribute values"))?;
    toks.iter()
        .enumerate()
        .map(|(i, t)| match *t {
            "1" => Ok(1),
            "0" => Ok(0),
            other => Err(format!(
                "attribute {}: expected 0 or 1, found `{other}`",
                i + 1
            )),
        })
        .collect()
}

/// A fine category row: one 1-based category id.
pub fn fine_category(toks: &[&str]) -> Result<u64, String> {
    expect_len(toks, 1, "category_label")?;
    uint(toks[0], "category_label")
}

/// A fine bbox row: `x_1 y_1 x_2 y_2`.
pub fn fine_bbox(toks: &[&str]) -> Result<[f32; 4], String> {
    expect_len(toks, 4, "x_1 y_1 x_2 y_2")?;
    bbox_of(toks)
}

/// A fine landmark row: `x y` for each of the 8 canonical slots, `0 0`
/// where the slot is absent. The file carries no visibility, so a present
/// landmark is [`LandmarkState::Visible`].
pub fn fine_landmarks(toks: &[&str]) -> Result<[Landmark; NUM_LANDMARKS], String> {
    expect_len(toks, 2 * NUM_LANDMARKS, "x y for each of the 8 slots")?;
    let mut out = [Landmark::ABSENT; NUM_LANDMARKS];
    for (slot, lm) in out.iter_mut().enumerate() {
        let x = number(toks[2 * slot], "landmark x")?;
        let y = number(toks[2 * slot + 1], "landmark y")?;
        if x != 0.0 || y != 0.0 {
            *lm = Landmark {
                state: LandmarkState::Visible,
                x,
                y,
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmark_row_with_and_without_variation() {
        let a = "img/a.jpg  1  0 146 102  0 173 095  1 094 242  2 205 255  0 136 229  0 177 232  ";
        let r = landmark_row(&tokens(a)).unwrap();
        assert_eq!(r.variation, None);
        assert_eq!(r.landmarks[1].y, 95.0);
        assert_eq!(r.landmarks[2].state, LandmarkState::Occluded);
        assert_eq!(r.landmarks[3].state, LandmarkState::Truncated);
        assert_eq!(r.landmarks[4].state, LandmarkState::Absent);
        assert_eq!(r.landmarks[7].x, 177.0);
        let b = "img/b.jpg 2 3 0 10 20 0 30 40 1 50 60 0 70 80";
        let r = landmark_row(&tokens(b)).unwrap();
        assert_eq!(r.variation, Some(3));
        assert_eq!(r.landmarks[0].state, LandmarkState::Absent);
        assert_eq!(r.landmarks[4].x, 10.0);
        assert_eq!(r.landmarks[6].state, LandmarkState::Occluded);
        assert!(landmark_row(&tokens("img/c.jpg 2 0 1 2 0 1")).is_err());
        assert!(landmark_row(&tokens("img/c.jpg 4 0 1 2")).is_err());
    }

    #[test]
    fn label_line_keeps_spaces() {
        assert_eq!(
            label_line("abstract chevron print  1  ").unwrap(),
            ("abstract chevron print".to_string(), 1)
        );
        assert!(label_line("lonely").is_err());
    }

    #[test]
    fn numbers_reject_nan() {
        assert_eq!(number("072", "x").unwrap(), 72.0);
        assert!(number("nan", "x").is_err());
        assert!(number("inf", "x").is_err());
        assert!(header_line("img/a.jpg 1").is_err());
        assert!(header_line("image_name  x_1").is_ok());
    }
}
