//! Metric tests against cases computed by hand (the arithmetic is in the
//! comments).

use super::*;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn category_topk_by_hand() {
    // image 0: truth 2, scores [0.1 0.5 0.3 0.05] -> order 1,2,0,3 -> rank 1
    // image 1: truth 0, scores [0.9 ...] -> rank 0
    // image 2: truth 3, scores [0.4 0.3 0.2 0.1] -> rank 3
    // image 3: truth 1, tie [0.5 0.5 0.1 0.0] -> stable: 0 before 1 -> rank 1
    let s = vec![
        vec![0.1, 0.5, 0.3, 0.05],
        vec![0.9, 0.0, 0.0, 0.1],
        vec![0.4, 0.3, 0.2, 0.1],
        vec![0.5, 0.5, 0.1, 0.0],
    ];
    let t = [2, 0, 3, 1];
    let a = category_topk(&s, &t, &[1, 2, 3, 4]);
    // ranks 1,0,3,1: top1 1/4, top2 3/4, top3 3/4, top4 4/4
    close(a[0], 0.25);
    close(a[1], 0.75);
    close(a[2], 0.75);
    close(a[3], 1.0);
    // out-of-range truth is a miss, not a panic
    let a = category_topk(&[vec![1.0, 0.0]], &[7], &[1]);
    close(a[0], 0.0);
}

#[test]
fn attribute_recall_by_hand() {
    // 5 attributes, groups [0,0,1,1,1].
    // image A: truth [1,0,1,-1,1] (3 positives), scores [.9 .8 .1 .7 .6]
    //   overall order 0,1,3,4,2: top3 {0,1,3} -> 1 positive; top5 -> 3.
    //   group0 {0,1}: order 0,1 -> top3/top5 (capped at 2) -> 1 of 1 positive.
    //   group1 {2,3,4}: order 3,4,2 -> top3 -> 2 positives (4,2) of 2.
    // image B: truth [0,1,0,0,0] (1 positive), scores [.5 .5 .2 .1 .0]
    //   tie 0,1 -> stable 0,1: top3 {0,1,2} -> 1; top5 -> 1.
    //   group0 order 0,1 -> 1 of 1; group1 no positive.
    // image C: no positive -> ignored.
    let s = vec![
        vec![0.9, 0.8, 0.1, 0.7, 0.6],
        vec![0.5, 0.5, 0.2, 0.1, 0.0],
        vec![0.0; 5],
    ];
    let t = vec![
        vec![1, 0, 1, -1, 1],
        vec![0, 1, 0, 0, 0],
        vec![0, -1, 0, 0, 0],
    ];
    let r = attribute_recall(&s, &t, &[0, 0, 1, 1, 1], 2, &[3, 5]);
    assert_eq!(r.positives, 4);
    close(r.overall[0], 2.0 / 4.0);
    close(r.overall[1], 4.0 / 4.0);
    assert_eq!(r.group_positives, vec![2, 2]);
    let g0 = r.by_group[0].as_ref().unwrap();
    close(g0[0], 2.0 / 2.0);
    let g1 = r.by_group[1].as_ref().unwrap();
    close(g1[0], 1.0);
    // k = 1 inside group1 for image A: top1 = {3} (value -1) -> 0 of 2.
    let r1 = attribute_recall(&s, &t, &[0, 0, 1, 1, 1], 2, &[1]);
    close(r1.by_group[1].as_ref().unwrap()[0], 0.0);
    // overall top1: A -> {0} hit, B -> {0} miss: 1 of 4.
    close(r1.overall[0], 0.25);
}

#[test]
fn attribute_group_without_positives_is_none() {
    let r = attribute_recall(&[vec![1.0, 0.0]], &[vec![1, 0]], &[0, 1], 2, &[3]);
    assert!(r.by_group[1].is_none());
    close(r.by_group[0].as_ref().unwrap()[0], 1.0);
}

#[test]
fn retrieval_topk_by_hand() {
    // gallery (2-d): g0 (1,0) item a; g1 (0,1) item b; g2 (1,1) item c; g3 (-1,0) item a
    // q0 (1,0.1) item b: cosines g0 .995, g2 .774, g1 .0995, g3 -.995 -> b at rank 2
    // q1 (0,2) item c: g1 1.0, g2 .707 -> c at rank 1 (scale does not matter)
    // q2 (1,0) item d: no gallery entry -> miss
    // q3 (-1,0) item a: g3 1.0 -> rank 0
    let g = vec![
        vec![1.0, 0.0],
        vec![0.0, 1.0],
        vec![1.0, 1.0],
        vec![-1.0, 0.0],
    ];
    let gi = ["a", "b", "c", "a"];
    let q = vec![
        vec![1.0, 0.1],
        vec![0.0, 2.0],
        vec![1.0, 0.0],
        vec![-1.0, 0.0],
    ];
    let qi = ["b", "c", "d", "a"];
    let a = retrieval_topk(&q, &qi, &g, &gi, &[1, 2, 3, 50]);
    close(a[0], 0.25); // q3
    close(a[1], 0.5); // q3, q1
    close(a[2], 0.75); // + q0
    close(a[3], 0.75); // q2 never
}

#[test]
fn retrieval_ties_keep_gallery_order() {
    // identical gallery vectors: g0 item x, g1 item y; query equal to both.
    let g = vec![vec![1.0, 0.0], vec![1.0, 0.0]];
    let a = retrieval_topk(&[vec![2.0, 0.0]], &["y"], &g, &["x", "y"], &[1, 2]);
    close(a[0], 0.0);
    close(a[1], 1.0);
}

fn lm(state: LandmarkState, x: f32, y: f32) -> Landmark {
    Landmark { state, x, y }
}

#[test]
fn landmark_ne_by_hand() {
    use LandmarkState::*;
    // image 0: bbox 0 0 100 50 (w 100, h 50)
    //   slot0 visible (10,10), pred (13,14): dx .03 dy .08 -> sqrt(.0009+.0064) = sqrt(.0073)
    //   slot1 occluded -> ignored; slot2 visible (50,25) pred (50,25) -> 0
    // image 1: bbox 10 10 30 30 (w 20, h 20)
    //   slot0 visible (20,20) pred (22,20) -> .1
    //   slot2 truncated -> ignored
    // slot means: slot0 (sqrt(.0073)+.1)/2, slot2 0 -> NE = mean of those two
    let mut t0 = [Landmark::ABSENT; 8];
    t0[0] = lm(Visible, 10.0, 10.0);
    t0[1] = lm(Occluded, 30.0, 10.0);
    t0[2] = lm(Visible, 50.0, 25.0);
    let mut t1 = [Landmark::ABSENT; 8];
    t1[0] = lm(Visible, 20.0, 20.0);
    t1[2] = lm(Truncated, 0.0, 0.0);
    let mut p0 = [[0f32; 2]; 8];
    p0[0] = [13.0, 14.0];
    p0[1] = [99.0, 99.0];
    p0[2] = [50.0, 25.0];
    let mut p1 = [[0f32; 2]; 8];
    p1[0] = [22.0, 20.0];
    p1[2] = [90.0, 90.0];
    let e = landmark_ne(
        &[p0, p1],
        &[t0, t1],
        &[[0.0, 0.0, 100.0, 50.0], [10.0, 10.0, 30.0, 30.0]],
        &[0.05, 0.1, 0.2],
    );
    let d00 = 0.0073f64.sqrt(); // 0.08544
    let s0 = (d00 + 0.1) / 2.0;
    assert!((e.ne_by_slot[0].unwrap() - s0).abs() < 1e-6);
    assert_eq!(e.ne_by_slot[2], Some(0.0));
    assert_eq!(e.ne_by_slot[1], None);
    assert!((e.ne - s0 / 2.0).abs() < 1e-6);
    assert_eq!(e.visible, 3);
    // distances .0854, 0, .1: < .05 -> 1; < .1 -> 2 (strict); < .2 -> 3
    close(e.detection_rate[0], 1.0 / 3.0);
    close(e.detection_rate[1], 2.0 / 3.0);
    close(e.detection_rate[2], 1.0);
}

#[test]
fn landmark_ne_skips_degenerate_bbox() {
    let mut t = [Landmark::ABSENT; 8];
    t[0] = lm(LandmarkState::Visible, 1.0, 1.0);
    let e = landmark_ne(&[[[0.0; 2]; 8]], &[t], &[[5.0, 5.0, 5.0, 9.0]], &[0.1]);
    assert_eq!(e.skipped_images, 1);
    assert_eq!(e.visible, 0);
    assert!(e.ne.is_nan());
}

#[test]
fn visibility_accuracy_by_hand() {
    use LandmarkState::*;
    let mut t = [Landmark::ABSENT; 8];
    t[0] = lm(Visible, 0.0, 0.0);
    t[1] = lm(Occluded, 0.0, 0.0);
    t[2] = lm(Truncated, 0.0, 0.0);
    let mut p = [[0.0f32; 3]; 8];
    p[0] = [0.8, 0.1, 0.1]; // visible: right
    p[1] = [0.5, 0.5, 0.0]; // tie -> first (visible): wrong
    p[2] = [0.1, 0.1, 0.8]; // truncated: right
    close(visibility_accuracy(&[p], &[t]), 2.0 / 3.0);
}

#[test]
fn nan_scores_do_not_panic() {
    let s = vec![vec![f32::NAN, 1.0, f32::NAN, -0.0, 0.0]];
    let a = category_topk(&s, &[0], &[1, 5]);
    close(a[0], 0.0);
    close(a[1], 1.0);
    let r = attribute_recall(&s, &[vec![1, 0, 0, 0, 0]], &[0; 5], 1, &[3]);
    close(r.overall[0], 0.0);
}

#[test]
fn comparison_table_lines_up_shared_headline_figures() {
    let with = |top1: f64, ne: Option<f64>| Scores {
        benchmark: "category-attribute".into(),
        split: "test".into(),
        category: Some(CategoryScores {
            top1,
            top3: 0.9,
            top5: 1.0,
            images: 10,
        }),
        attributes: None,
        retrieval: None,
        landmarks: ne.map(|ne| LandmarkScores {
            ne,
            ne_by_slot: [None; NUM_LANDMARKS],
            detection_rate: Default::default(),
            visible: 5,
            images: 10,
            visibility_accuracy: None,
        }),
    };
    let a = with(0.85, Some(0.0816));
    let names: Vec<_> = a.headline().iter().map(|h| h.0).collect();
    assert_eq!(names, ["category top-1", "category top-5", "landmark NE"]);
    let t = comparison_table("int8", &a, "fp32", &with(0.8633, Some(0.0815)));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert!(
        lines[1].starts_with("category top-1") && lines[1].ends_with("-1.33 pt"),
        "{t}"
    );
    assert!(lines[3].ends_with("+0.0001"), "{t}");
    // A metric only one side has is left out.
    let t = comparison_table("a", &a, "b", &with(0.5, None));
    assert!(!t.contains("landmark NE"), "{t}");
}
