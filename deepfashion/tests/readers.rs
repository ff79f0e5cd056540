//! The readers against the hand-written real-format fixtures in
//! `tests/fixtures/DeepFashion` (every quirk of DESIGN.md section 5).

use deepfashion::annotations::{
    load, Benchmark, DataError, Dataset, LandmarkState, LoadOptions, Source,
};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/DeepFashion")
}

fn strict(b: Benchmark) -> Dataset {
    load(&fixtures(), b, &LoadOptions::default()).unwrap()
}

fn rec<'a>(ds: &'a Dataset, name: &str) -> &'a deepfashion::annotations::ImageRecord {
    ds.images.iter().find(|r| r.image == name).unwrap()
}

/// Copy a fixture benchmark folder into a temp dir for mutation.
fn copy_bench(b: Benchmark) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(b.folder_name());
    copy_dir(&fixtures().join(b.folder_name()), &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[test]
fn coarse_category_attribute() {
    let ds = strict(Benchmark::CategoryAttribute);
    assert_eq!(ds.images.len(), 8);
    assert_eq!(ds.categories.len(), 6);
    assert_eq!(ds.categories[4].name, "Dress");
    assert_eq!(ds.categories[4].garment_type, 3);
    assert_eq!(ds.attributes.len(), 6);
    assert_eq!(ds.attributes[1].name, "abstract chevron print");
    assert_eq!(ds.attributes[1].group, "texture");
    assert_eq!(ds.attributes[5].name, "boho chic");
    assert_eq!(ds.attributes[5].group, "style");
    assert_eq!(ds.split("test").count(), 3);
    // partition order kept; joined by name although category_img is shuffled
    assert_eq!(
        ds.images[0].image,
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg"
    );
    let r = rec(&ds, "img/Boho_Jumpsuit/img_00000007.jpg");
    assert_eq!(r.category, Some(5));
    assert_eq!(r.clothes_type, Some(3));
    assert_eq!(r.bbox, Some([34.0, 31.0, 188.0, 286.0]));
    assert_eq!(r.attributes.as_deref(), Some(&[-1, 1, -1, 1, -1, 1][..]));
    let l = r.landmarks.unwrap();
    assert_eq!(l[7].state, LandmarkState::Truncated);
    assert_eq!((l[0].x, l[0].y), (90.0, 40.0));
    // zero-padded label `02`, unknown attribute value 0 kept
    let r = rec(&ds, "img/Sheer_Pleated-Front_Blouse/img_00000008.jpg");
    assert_eq!(r.category, Some(1));
    let r = rec(&ds, "img/Sheer_Pleated-Front_Blouse/img_00000002.jpg");
    assert_eq!(r.attributes.as_ref().unwrap()[3], 0);
    let l = r.landmarks.unwrap();
    // upper body: slots 0-3 and 6-7, no waistline
    assert_eq!(l[1].state, LandmarkState::Occluded);
    assert_eq!(l[3].state, LandmarkState::Truncated);
    assert_eq!(l[4].state, LandmarkState::Absent);
    assert_eq!(l[5].state, LandmarkState::Absent);
    assert_eq!((l[6].x, l[6].y), (90.0, 158.0));
    // lower body fills 4-7
    let l = rec(&ds, "img/Classic_Denim_Shorts/img_00000003.jpg")
        .landmarks
        .unwrap();
    assert!(l[..4].iter().all(|x| x.state == LandmarkState::Absent));
    assert_eq!((l[4].x, l[7].y), (70.0, 197.0));
    assert_eq!(ds.labels().attributes.len(), 6);
    assert_eq!(ds.skipped_rows, 0);
}

#[test]
fn benchmark_folder_itself_and_anno_coarse() {
    let (_t, dir) = copy_bench(Benchmark::CategoryAttribute);
    std::fs::rename(dir.join("Anno"), dir.join("Anno_coarse")).unwrap();
    let ds = load(&dir, Benchmark::CategoryAttribute, &LoadOptions::default()).unwrap();
    assert_eq!(ds.images.len(), 8);
    assert_eq!(ds.root, dir);
    // image paths: Img/img/... preferred, img/... accepted
    let r = &ds.images[0];
    assert_eq!(ds.image_path(r), dir.join("Img").join(&r.image));
    let direct = dir.join(&r.image);
    std::fs::create_dir_all(direct.parent().unwrap()).unwrap();
    std::fs::write(&direct, b"x").unwrap();
    assert_eq!(ds.image_path(r), direct);
}

#[test]
fn fine_split_files_are_row_aligned() {
    let ds = strict(Benchmark::Fine);
    assert_eq!(ds.images.len(), 7);
    assert_eq!(ds.attributes.len(), 26);
    assert_eq!(ds.attributes[25].group, "fit");
    assert_eq!(ds.attributes[7].group, "sleeve");
    assert_eq!(ds.attribute_groups().len(), 6);
    let r = rec(&ds, "img/Boho_Jumpsuit/img_00000007.jpg");
    assert_eq!(r.split, "test");
    assert_eq!(r.category, Some(5));
    assert_eq!(r.clothes_type, Some(3));
    assert_eq!(r.bbox, Some([34.0, 31.0, 188.0, 286.0]));
    assert_eq!(r.attributes.as_ref().unwrap()[0], 1);
    let l = r.landmarks.unwrap();
    assert_eq!(l[7].state, LandmarkState::Absent);
    assert_eq!((l[6].x, l[6].y), (60.0, 280.0));
    let l = rec(&ds, "img/Pleated_A-Line_Skirt/img_00000006.jpg")
        .landmarks
        .unwrap();
    assert_eq!(l[0].state, LandmarkState::Absent);
    assert_eq!(l[4].state, LandmarkState::Visible);
}

#[test]
fn fine_row_count_mismatch_names_file() {
    let (_t, dir) = copy_bench(Benchmark::Fine);
    let p = dir.join("Anno_fine/test_cate.txt");
    std::fs::write(&p, "4\n6\n").unwrap();
    let e = load(&dir, Benchmark::Fine, &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("test_cate.txt") && msg.contains("2 rows"),
        "{msg}"
    );
}

#[test]
fn inshop() {
    let ds = strict(Benchmark::InShop);
    assert_eq!(ds.images.len(), 9);
    assert_eq!(ds.items.len(), 5);
    assert_eq!(ds.split("query").count(), 3);
    assert_eq!(ds.split("gallery").count(), 4);
    assert!(ds.categories.is_empty());
    let r = rec(&ds, "img/WOMEN/Dresses/id_00000002/01_2_side.jpg");
    assert_eq!(r.item_id.as_deref(), Some("id_00000002"));
    assert_eq!(r.clothes_type, Some(3));
    assert_eq!(r.category, None);
    assert_eq!(r.category_hint(), Some("Dresses"));
    assert_eq!(r.bbox, Some([60.0, 22.0, 190.0, 251.0]));
    let l = r.landmarks.unwrap();
    assert_eq!(l[1].state, LandmarkState::Occluded);
    assert_eq!(l[3].state, LandmarkState::Truncated);
    assert_eq!((l[7].x, l[7].y), (175.0, 246.0));
}

#[test]
fn consumer2shop() {
    let ds = strict(Benchmark::Consumer2Shop);
    // 6 consumer + 5 shop images (shop_01 of item 1 is in two pairs)
    assert_eq!(ds.images.len(), 11);
    let shop = ds
        .images
        .iter()
        .filter(|r| r.source == Some(Source::Shop))
        .count();
    assert_eq!(shop, 5);
    let r = rec(&ds, "img/DRESSES/Dress/id_00000002/comsumer_01.jpg");
    assert_eq!(r.source, Some(Source::Consumer));
    assert_eq!(r.split, "test");
    assert_eq!(r.item_id.as_deref(), Some("id_00000002"));
    assert_eq!(r.landmarks.unwrap()[7].state, LandmarkState::Truncated);
    assert_eq!(r.bbox, Some([40.0, 10.0, 220.0, 290.0]));
    assert_eq!(ds.items.len(), 4);
}

#[test]
fn landmark_benchmark_with_variation_column() {
    let ds = strict(Benchmark::Landmarks);
    assert_eq!(ds.images.len(), 5);
    let r = rec(&ds, "img/img_00000003.jpg");
    assert_eq!(r.clothes_type, Some(2));
    let l = r.landmarks.unwrap();
    assert_eq!((l[4].x, l[4].y), (80.0, 50.0));
    assert_eq!(r.bbox, Some([75.0, 44.0, 181.0, 290.0]));
}

#[test]
fn root_layout_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load(tmp.path(), Benchmark::InShop, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Layout(_)), "{e}");
    assert!("nope".parse::<Benchmark>().is_err());
    for b in Benchmark::ALL {
        assert_eq!(b.to_string().parse::<Benchmark>().unwrap(), b);
    }
}

fn corrupt(b: Benchmark, file: &str, line: usize, with: &str) -> (tempfile::TempDir, PathBuf) {
    let (t, dir) = copy_bench(b);
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[line - 1] = with.to_string();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    (t, dir)
}

#[test]
fn malformed_rows_name_file_and_line_or_are_counted() {
    let cases = [
        // (benchmark, file, line, replacement, rows skipped in lenient mode)
        (
            Benchmark::CategoryAttribute,
            "Anno/list_bbox.txt",
            5,
            "img/Floral_Print_Dress/img_00000004.jpg 051 062 167",
            1,
        ),
        (
            Benchmark::CategoryAttribute,
            "Anno/list_attr_img.txt",
            4,
            "img/Sheer_Pleated-Front_Blouse/img_00000002.jpg -1 1 -1 0 -1 2",
            1,
        ),
        (
            Benchmark::CategoryAttribute,
            "Anno/list_landmarks.txt",
            6,
            "img/Floral_Print_Dress/img_00000004.jpg 3 0 1 2",
            1,
        ),
        (
            Benchmark::CategoryAttribute,
            "Anno/list_category_img.txt",
            3,
            "img/Boho_Jumpsuit/img_00000007.jpg 51",
            1,
        ),
        (
            Benchmark::InShop,
            "Eval/list_eval_partition.txt",
            4,
            "img/x.jpg id_1 holdout",
            3,
        ),
        (
            Benchmark::Consumer2Shop,
            "Anno/list_bbox_consumer2shop.txt",
            3,
            "img/CLOTHING/Blouse/id_00000001/comsumer_01.jpg 1 1 030 040 250 280",
            1,
        ),
        (
            Benchmark::Landmarks,
            "Anno/list_landmarks.txt",
            7,
            "img/img_00000005.jpg 1 3 0 100 085 nan 160 086",
            1,
        ),
    ];
    // A skipped partition row also makes that image's rows in the other
    // files unjoinable (bbox and landmarks): 3 skipped rows.
    for (b, file, line, text, skipped) in cases {
        let (_t, dir) = corrupt(b, file, line, text);
        let e = load(&dir, b, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        let want = format!("{file}:{line}:");
        assert!(e.contains(&want), "{b}: `{e}` lacks `{want}`");
        let ds = load(&dir, b, &LoadOptions { lenient: true }).unwrap();
        assert_eq!(ds.skipped_rows, skipped, "{b} {file}");
    }
}

#[test]
fn missing_header_and_bad_count_are_errors() {
    let (_t, dir) = corrupt(
        Benchmark::CategoryAttribute,
        "Anno/list_bbox.txt",
        2,
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg 072 079 232 273",
    );
    let e = load(&dir, Benchmark::CategoryAttribute, &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("list_bbox.txt:2: expected the column-name line"),
        "{e}"
    );
    let (_t, dir) = corrupt(Benchmark::Landmarks, "Anno/list_bbox.txt", 1, "6");
    let e = load(&dir, Benchmark::Landmarks, &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("count line says 6 rows, the file has 5"),
        "{e}"
    );
    let (_t, dir) = corrupt(
        Benchmark::Landmarks,
        "Anno/list_bbox.txt",
        3,
        "img/img_00000009.jpg 1 2 3 4",
    );
    let e = load(&dir, Benchmark::Landmarks, &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("not in list_eval_partition.txt"),
        "{e}"
    );
}
