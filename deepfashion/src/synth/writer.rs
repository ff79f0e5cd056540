//! The annotation files, written in the released formats with their quirks:
//! a count line then a column-name line (except the item lists and the fine
//! split files), columns padded with runs of spaces, zero-padded
//! coordinates, trailing spaces on some rows, landmark rows of variable
//! length, attribute names containing spaces.

use std::fmt::Write as _;
use std::path::Path;

use super::labels::{Kind, CATEGORIES, COARSE_ATTRIBUTES, FINE_ATTRIBUTES};
use super::plan::{Plan, BENCHMARKS};
use super::scene::Landmark;
use super::{io_err, SynthError};

/// What rendering produced for one job.
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [u32; 4],
    /// The 8 canonical slots.
    pub landmarks: [Option<Landmark>; 8],
}

/// The file slots a garment type lists, in file order.
fn slots_of(garment_type: u8) -> &'static [usize] {
    match garment_type {
        1 => &[0, 1, 2, 3, 6, 7],
        2 => &[4, 5, 6, 7],
        _ => &[0, 1, 2, 3, 4, 5, 6, 7],
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), SynthError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| io_err(path, e))
}

/// Count line, column-name line, rows.
fn table(header: &str, rows: &[String]) -> String {
    let mut s = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 64);
    let _ = writeln!(s, "{}", rows.len());
    let _ = writeln!(s, "{header}");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn pad(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

/// Width of the padded image-name column: the longest name plus a run of spaces.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0) + 8
}

/// `  vis xxx yyy` triples for the slots of the garment type.
fn landmark_triples(lm: &[Option<Landmark>; 8], garment_type: u8) -> String {
    let mut s = String::new();
    for &slot in slots_of(garment_type) {
        let l = lm[slot].unwrap_or(Landmark { vis: 2, x: 0, y: 0 });
        let _ = write!(s, "  {} {:03} {:03}", l.vis, l.x, l.y);
    }
    s
}

/// The landmark column names. Every released landmark file names a
/// variation column; the C&A rows nevertheless lack it.
fn landmark_header() -> String {
    let mut h = String::from("image_name  clothes_type  variation_type");
    for k in 1..=8 {
        let _ = write!(
            h,
            "  landmark_visibility_{k}  landmark_location_x_{k}  landmark_location_y_{k}"
        );
    }
    h
}

fn name_list_file(names: &[(&str, u8)]) -> Vec<String> {
    names
        .iter()
        .map(|(n, t)| format!("{}{t}", pad(n, 29)))
        .collect()
}

/// Write every annotation file of the four benchmarks under `root`.
pub fn write_all(root: &Path, plan: &Plan, out: &[JobOutput]) -> Result<(), SynthError> {
    write_attr(&root.join(BENCHMARKS[0]), plan, out)?;
    write_inshop(&root.join(BENCHMARKS[1]), plan, out)?;
    write_c2s(&root.join(BENCHMARKS[2]), plan, out)?;
    write_landmark(&root.join(BENCHMARKS[3]), plan, out)
}

fn garment_type_of(plan: &Plan, job: usize) -> u8 {
    plan.garments[plan.jobs[job].garment].kind.garment_type()
}

fn kind_of(plan: &Plan, job: usize) -> Kind {
    plan.garments[plan.jobs[job].garment].kind
}

fn write_attr(dir: &Path, plan: &Plan, out: &[JobOutput]) -> Result<(), SynthError> {
    let coarse = dir.join("Anno_coarse");
    let fine = dir.join("Anno_fine");
    let names: Vec<&str> = plan
        .attr
        .iter()
        .map(|e| plan.jobs[e.job].name.as_str())
        .collect();
    let w = name_width(names.iter().copied());

    let cats = table("category_name  category_type", &name_list_file(&CATEGORIES));
    write_file(&coarse.join("list_category_cloth.txt"), &cats)?;
    write_file(&fine.join("list_category_cloth.txt"), &cats)?;
    write_file(
        &coarse.join("list_attr_cloth.txt"),
        &table(
            "attribute_name  attribute_type",
            &name_list_file(&COARSE_ATTRIBUTES),
        ),
    )?;
    write_file(
        &fine.join("list_attr_cloth.txt"),
        &table(
            "attribute_name  attribute_type",
            &name_list_file(&FINE_ATTRIBUTES),
        ),
    )?;

    let mut cat_rows = Vec::new();
    let mut attr_rows = Vec::new();
    let mut bbox_rows = Vec::new();
    let mut lm_rows = Vec::new();
    let mut eval_rows = Vec::new();
    let full_lm_len = landmark_triples(&[None; 8], 3).len() + 2;
    for (e, name) in plan.attr.iter().zip(&names) {
        let g = &plan.garments[plan.jobs[e.job].garment];
        let o = &out[e.job];
        cat_rows.push(format!("{}{}", pad(name, w), g.kind.category_id()));
        let mut vals = String::new();
        for (i, p) in g.coarse_positives().iter().enumerate() {
            if i > 0 {
                vals.push(' ');
            }
            vals.push_str(if *p {
                " 1"
            } else if e.unknown.contains(&i) {
                " 0"
            } else {
                "-1"
            });
        }
        attr_rows.push(format!("{}{vals}", pad(name, w)));
        let [x1, y1, x2, y2] = o.bbox;
        bbox_rows.push(format!("{}{x1:03} {y1:03} {x2:03} {y2:03}", pad(name, w)));
        // No variation column in the C&A rows; shorter rows are padded with
        // trailing spaces to the width of a full-body row.
        let gt = g.kind.garment_type();
        let row = format!("{}{gt}{}", pad(name, w), landmark_triples(&o.landmarks, gt));
        lm_rows.push(format!("{row:<width$}", width = w + full_lm_len - 1));
        eval_rows.push(format!("{}{}", pad(name, w), e.split));
    }
    write_file(
        &coarse.join("list_category_img.txt"),
        &table("image_name  category_label", &cat_rows),
    )?;
    write_file(
        &coarse.join("list_attr_img.txt"),
        &table("image_name  attribute_labels", &attr_rows),
    )?;
    write_file(
        &coarse.join("list_bbox.txt"),
        &table("image_name  x_1  y_1  x_2  y_2", &bbox_rows),
    )?;
    write_file(
        &coarse.join("list_landmarks.txt"),
        &table(&landmark_header(), &lm_rows),
    )?;
    write_file(
        &dir.join("Eval").join("list_eval_partition.txt"),
        &table("image_name  evaluation_status", &eval_rows),
    )?;

    // Anno_fine: plain row-aligned split files, no count or header lines.
    for split in ["train", "val", "test"] {
        let (mut names_s, mut attr_s, mut cate_s, mut bbox_s, mut lm_s) = (
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        );
        for (e, name) in plan
            .attr
            .iter()
            .zip(&names)
            .filter(|(e, _)| e.split == split)
        {
            let g = &plan.garments[plan.jobs[e.job].garment];
            let o = &out[e.job];
            let _ = writeln!(names_s, "{name}");
            let fine_vals: Vec<String> = g.fine_attributes().iter().map(u8::to_string).collect();
            let _ = writeln!(attr_s, "{}", fine_vals.join(" "));
            let _ = writeln!(cate_s, "{}", g.kind.category_id());
            let [x1, y1, x2, y2] = o.bbox;
            let _ = writeln!(bbox_s, "{x1} {y1} {x2} {y2}");
            let xy: Vec<String> = o
                .landmarks
                .iter()
                .map(|l| l.map_or("0 0".to_string(), |l| format!("{} {}", l.x, l.y)))
                .collect();
            let _ = writeln!(lm_s, "{}", xy.join(" "));
        }
        write_file(&fine.join(format!("{split}.txt")), &names_s)?;
        write_file(&fine.join(format!("{split}_attr.txt")), &attr_s)?;
        write_file(&fine.join(format!("{split}_cate.txt")), &cate_s)?;
        write_file(&fine.join(format!("{split}_bbox.txt")), &bbox_s)?;
        write_file(&fine.join(format!("{split}_landmarks.txt")), &lm_s)?;
    }
    Ok(())
}

fn write_inshop(dir: &Path, plan: &Plan, out: &[JobOutput]) -> Result<(), SynthError> {
    let anno = dir.join("Anno");
    let w = name_width(plan.inshop.iter().map(|e| plan.jobs[e.job].name.as_str()));
    let (mut bbox_rows, mut lm_rows, mut eval_rows) = (Vec::new(), Vec::new(), Vec::new());
    for e in &plan.inshop {
        let job = &plan.jobs[e.job];
        let gt = garment_type_of(plan, e.job);
        let o = &out[e.job];
        let [x1, y1, x2, y2] = o.bbox;
        let name = pad(&job.name, w);
        bbox_rows.push(format!(
            "{name}{gt}  {}  {x1:03}  {y1:03}  {x2:03}  {y2:03}",
            e.pose_type
        ));
        lm_rows.push(format!(
            "{name}{gt}  {}{}",
            job.view.variation_type(),
            landmark_triples(&o.landmarks, gt)
        ));
        // Status padded to the widest value: trailing spaces on train/query rows.
        eval_rows.push(format!(
            "{name}{:<20}{:<7}",
            format!("id_{:08}", e.item),
            e.status
        ));
    }
    write_file(
        &anno.join("list_bbox_inshop.txt"),
        &table(
            "image_name  clothes_type  pose_type  x_1  y_1  x_2  y_2",
            &bbox_rows,
        ),
    )?;
    write_file(
        &anno.join("list_landmarks_inshop.txt"),
        &table(&landmark_header(), &lm_rows),
    )?;
    let mut items = format!("{}\n", plan.inshop_items.len());
    for id in &plan.inshop_items {
        let _ = writeln!(items, "id_{id:08}");
    }
    write_file(&anno.join("list_item_inshop.txt"), &items)?;
    write_file(
        &dir.join("Eval").join("list_eval_partition.txt"),
        &table("image_name item_id evaluation_status", &eval_rows),
    )
}

fn write_c2s(dir: &Path, plan: &Plan, out: &[JobOutput]) -> Result<(), SynthError> {
    let anno = dir.join("Anno");
    let all_jobs = || {
        plan.c2s
            .iter()
            .flat_map(|it| it.shop.iter().chain(&it.consumer).copied())
    };
    let w = name_width(all_jobs().map(|j| plan.jobs[j].name.as_str()));
    let (mut bbox_rows, mut lm_rows, mut eval_rows) = (Vec::new(), Vec::new(), Vec::new());
    for it in &plan.c2s {
        for (source, jobs) in [(1u8, &it.shop), (2u8, &it.consumer)] {
            for &j in jobs {
                let job = &plan.jobs[j];
                let gt = garment_type_of(plan, j);
                let o = &out[j];
                let [x1, y1, x2, y2] = o.bbox;
                let name = pad(&job.name, w);
                bbox_rows.push(format!(
                    "{name}{gt}  {source}  {x1:03}  {y1:03}  {x2:03}  {y2:03}"
                ));
                lm_rows.push(format!(
                    "{name}{gt}  {}{}",
                    job.view.variation_type(),
                    landmark_triples(&o.landmarks, gt)
                ));
            }
        }
        for &c in &it.consumer {
            for &s in &it.shop {
                eval_rows.push(format!(
                    "{}{}{:<20}{:<5}",
                    pad(&plan.jobs[c].name, w),
                    pad(&plan.jobs[s].name, w),
                    format!("id_{:08}", it.item),
                    it.status
                ));
            }
        }
    }
    bbox_rows.sort();
    lm_rows.sort();
    write_file(
        &anno.join("list_bbox_consumer2shop.txt"),
        &table(
            "image_name  clothes_type  source_type  x_1  y_1  x_2  y_2",
            &bbox_rows,
        ),
    )?;
    write_file(
        &anno.join("list_landmarks_consumer2shop.txt"),
        &table(&landmark_header(), &lm_rows),
    )?;
    let mut items = format!("{}\n", plan.c2s.len());
    for it in &plan.c2s {
        let _ = writeln!(items, "id_{:08}", it.item);
    }
    write_file(&anno.join("list_item_consumer2shop.txt"), &items)?;
    write_file(
        &dir.join("Eval").join("list_eval_partition.txt"),
        &table(
            "image_pair_name_1 image_pair_name_2 item_id evaluation_status",
            &eval_rows,
        ),
    )
}

fn write_landmark(dir: &Path, plan: &Plan, out: &[JobOutput]) -> Result<(), SynthError> {
    let anno = dir.join("Anno");
    let w = name_width(plan.landmark.iter().map(|e| plan.jobs[e.job].name.as_str()));
    let (mut bbox_rows, mut lm_rows, mut eval_rows) = (Vec::new(), Vec::new(), Vec::new());
    for e in &plan.landmark {
        let job = &plan.jobs[e.job];
        let kind = kind_of(plan, e.job);
        let gt = kind.garment_type();
        let o = &out[e.job];
        let [x1, y1, x2, y2] = o.bbox;
        let name = pad(&job.name, w);
        bbox_rows.push(format!("{name}{x1:03} {y1:03} {x2:03} {y2:03}"));
        lm_rows.push(format!(
            "{name}{gt}  {}{}",
            job.view.variation_type(),
            landmark_triples(&o.landmarks, gt)
        ));
        eval_rows.push(format!("{name}{}", e.split));
    }
    write_file(
        &anno.join("list_bbox.txt"),
        &table("image_name  x_1  y_1  x_2  y_2", &bbox_rows),
    )?;
    write_file(
        &anno.join("list_landmarks.txt"),
        &table(&landmark_header(), &lm_rows),
    )?;
    write_file(
        &dir.join("Eval").join("list_eval_partition.txt"),
        &table("image_name  evaluation_status", &eval_rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmark_triples_are_zero_padded_and_sized_by_type() {
        let lm = [Some(Landmark {
            vis: 0,
            x: 72,
            y: 5,
        }); 8];
        let s = landmark_triples(&lm, 1);
        assert_eq!(s.split_whitespace().count(), 18);
        assert!(s.starts_with("  0 072 005"));
        assert_eq!(landmark_triples(&lm, 2).split_whitespace().count(), 12);
        assert_eq!(landmark_triples(&lm, 3).split_whitespace().count(), 24);
        let t = table("a  b", &["x  1".to_string()]);
        assert_eq!(t, "1\na  b\nx  1\n");
        assert_eq!(
            name_list_file(&[("abstract chevron print", 1)])[0],
            "abstract chevron print       1"
        );
    }
}
