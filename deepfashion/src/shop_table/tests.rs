use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn unit(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    // Sum of uniforms ~ roughly Gaussian, then L2-normalized like the model.
    let v: Vec<f32> = (0..dim)
        .map(|_| (0..4).map(|_| rng.gen::<f32>() - 0.5).sum())
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn items(n: usize, dim: usize, seed: u64) -> Vec<TableItem> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| TableItem {
            id: format!("id_{i:05}"),
            name: (i % 2 == 0).then(|| format!("Item {i} ünïcode")),
            price: (i % 3 == 0).then(|| format!("{}.99 EUR", i % 100)),
            url: (i % 5 == 0).then(|| format!("https://shop.example/{i}")),
            embedding: unit(&mut rng, dim),
        })
        .collect()
}

fn table_bytes(items: &[TableItem], dim: usize) -> Vec<u8> {
    let mut w = TableWriter::new("0123456789abcdef0123456789abcdef", dim).unwrap();
    for it in items {
        w.push(it).unwrap();
    }
    w.to_bytes()
}

/// Dot products of each query with item `i` as stored stay within the
/// table's rounding bound of those with its float embedding `float`.
fn assert_within_rounding<'a>(
    t: &ShopTable,
    i: usize,
    float: &[f32],
    queries: impl IntoIterator<Item = &'a Vec<f32>>,
) {
    let mut stored = vec![0f32; t.dim()];
    assert!(t.dequantize_into(i, &mut stored));
    for q in queries {
        let s: f32 = stored.iter().zip(q).map(|(a, b)| a * b).sum();
        let f: f32 = float.iter().zip(q).map(|(a, b)| a * b).sum();
        let bound = t.rounding_bound(i, q).unwrap();
        assert!(
            (s - f).abs() <= bound,
            "item {i}: {s} vs {f}, bound {bound}"
        );
    }
}

#[test]
fn roundtrip_through_file_keeps_header_items_and_finds_itself() {
    let dim = 48;
    let its = items(300, dim, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.table");
    write_table(&path, "0123456789abcdef0123456789abcdef", dim, &its).unwrap();
    let t = ShopTable::open(&path).unwrap();
    assert_eq!(t.dim(), dim);
    assert_eq!(t.len(), 300);
    assert_eq!(t.fingerprint(), "0123456789abcdef0123456789abcdef");
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    for (i, it) in its.iter().enumerate() {
        let r = t.item(i);
        assert_eq!(r.id, it.id);
        assert_eq!(r.name, it.name.as_deref());
        assert_eq!(r.price, it.price.as_deref());
        assert_eq!(r.url, it.url.as_deref());
        assert_within_rounding(
            &t,
            i,
            &it.embedding,
            [&its[0].embedding, &its[(i + 1) % 300].embedding],
        );
    }
    assert!(t.get(300).is_none());
    assert!(t.rounding_bound(300, &its[0].embedding).is_none());
    assert!(t.rounding_bound(0, &its[0].embedding[1..]).is_none());
    assert!(!t.dequantize_into(300, &mut vec![0f32; dim]));
    assert!(!t.dequantize_into(0, &mut vec![0f32; dim - 1]));
    // The stored mean is the items' mean.
    for (j, m) in t.mean().iter().enumerate() {
        let want = its.iter().map(|it| it.embedding[j]).sum::<f32>() / its.len() as f32;
        assert!((m - want).abs() < 1e-6, "mean[{j}] {m} vs {want}");
    }
    for i in [0usize, 17, 299] {
        let m = t.search(&its[i].embedding, 5);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].index as usize, i);
        assert!((m[0].score - 1.0).abs() < 0.02, "{}", m[0].score);
        assert!(m.windows(2).all(|w| w[0].score >= w[1].score));
    }
    // Sections are 64-byte aligned and the per-item cost is D + 12 + strings
    // for item-affine, D + 16 + strings for principal axes (the export issue
    // allows D + 16 plus ids); principal axes add the D x D basis once.
    let strings: usize = its
        .iter()
        .map(|it| {
            8 + it.id.len()
                + it.name.as_ref().map_or(0, |s| s.len())
                + it.price.as_ref().map_or(0, |s| s.len())
                + it.url.as_ref().map_or(0, |s| s.len())
        })
        .sum();
    let fixed = format::HEADER_LEN + 4 * dim + format::CHECKSUM_LEN + 6 * format::ALIGN + 4;
    for (enc, per_item, once) in [
        (Encoding::ItemAffine, dim + 12, 0),
        (
            Encoding::Principal { refined: 12 },
            dim + 16,
            4 * dim * (dim + 2),
        ),
    ] {
        let mut w = TableWriter::new("fp", dim).unwrap();
        for it in &its {
            w.push(it).unwrap();
        }
        w.force_encoding(enc).unwrap();
        let bytes = w.to_bytes();
        assert!(
            bytes.len() <= fixed + once + 300 * per_item + strings,
            "{enc:?}"
        );
        for k in 0..4 {
            assert_eq!(u64_at(&bytes, 88 + 8 * k) % 64, 0);
        }
        assert_eq!(ShopTable::from_bytes(bytes).unwrap().encoding(), enc);
    }
}

/// Embeddings like a trained model's: 40 products on a few dominant
/// directions of a 64-dim space (decaying spread), views of a product close
/// together, small isotropic noise, L2-normalized. Returns (gallery, queries):
/// 5 gallery views and 2 query views per product.
fn trained_like(seed: u64) -> (Vec<TableItem>, Vec<Vec<f32>>) {
    let dim = 64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gauss = |rng: &mut ChaCha8Rng| (0..6).map(|_| rng.gen::<f32>() - 0.5).sum::<f32>();
    let axes: Vec<Vec<f32>> = (0..8).map(|_| unit(&mut rng, dim)).collect();
    let spread = [1.0f32, 0.8, 0.6, 0.5, 0.35, 0.25, 0.12, 0.08];
    let view = |rng: &mut ChaCha8Rng, centre: &[f32]| {
        let mut v: Vec<f32> = centre.iter().map(|c| c + 0.01 * gauss(rng)).collect();
        for (a, s) in axes.iter().zip(spread) {
            let t = 0.05 * s * gauss(rng);
            v.iter_mut().zip(a).for_each(|(x, y)| *x += t * y);
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let (mut gallery, mut queries) = (Vec::new(), Vec::new());
    for p in 0..40 {
        let mut centre = vec![0f32; dim];
        centre[0] = 1.0;
        for (a, s) in axes.iter().zip(spread) {
            let t = s * gauss(&mut rng);
            centre.iter_mut().zip(a).for_each(|(x, y)| *x += t * y);
        }
        for v in 0..5 {
            gallery.push(TableItem {
                id: format!("p{p}v{v}"),
                name: None,
                price: None,
                url: None,
                embedding: view(&mut rng, &centre),
            });
        }
        for _ in 0..2 {
            queries.push(view(&mut rng, &centre));
        }
    }
    (gallery, queries)
}

/// Share of `queries` whose top-20 from `t` is the top-20 of float search
/// over `gallery`, and share equal to float search over the stored vectors.
fn top20_agreement(t: &ShopTable, gallery: &[TableItem], queries: &[Vec<f32>]) -> (f64, f64) {
    let dim = t.dim();
    let flat: Vec<f32> = gallery.iter().flat_map(|it| it.embedding.clone()).collect();
    let set = |m: Vec<Match>| {
        let mut v: Vec<u32> = m.into_iter().map(|m| m.index).collect();
        v.sort_unstable();
        v
    };
    let (mut orig, mut stored) = (0, 0);
    for q in queries {
        let a = set(t.search(q, 20));
        orig += usize::from(a == set(search_float(&flat, dim, q, 20)));
        stored += usize::from(a == set(t.search_float(q, 20)));
    }
    let n = queries.len() as f64;
    (orig as f64 / n, stored as f64 / n)
}

#[test]
fn principal_axes_are_chosen_for_trained_like_embeddings_and_keep_the_top20() {
    let (gallery, queries) = trained_like(21);
    let dim = 64;
    let build = |enc: Option<Encoding>| {
        let mut w = TableWriter::new("fp", dim).unwrap();
        for it in &gallery {
            w.push(it).unwrap();
        }
        if let Some(e) = enc {
            w.force_encoding(e).unwrap();
        }
        ShopTable::from_bytes(w.to_bytes()).unwrap()
    };
    let chosen = build(None);
    assert_eq!(chosen.encoding(), Encoding::Principal { refined: 12 });
    let affine = build(Some(Encoding::ItemAffine));
    let (p_orig, p_stored) = top20_agreement(&chosen, &gallery, &queries);
    let (a_orig, a_stored) = top20_agreement(&affine, &gallery, &queries);
    eprintln!(
        "top-20 equal to float search: principal axes {p_orig:.3} (stored {p_stored:.3}), \
         item-affine {a_orig:.3} (stored {a_stored:.3})"
    );
    assert!(p_orig >= 0.99, "principal axes: {p_orig}");
    assert!(p_orig > a_orig, "{p_orig} vs {a_orig}");
    assert!(
        p_stored >= 0.99 && a_stored >= 0.99,
        "{p_stored} {a_stored}"
    );
    // Every stored item is within its rounding bound of the float one.
    for (i, it) in gallery.iter().enumerate() {
        assert_within_rounding(&chosen, i, &it.embedding, queries.iter().take(5));
    }
    // Each item finds itself first.
    for (i, it) in gallery.iter().enumerate().step_by(7) {
        assert_eq!(chosen.search(&it.embedding, 3)[0].index as usize, i);
    }
}

#[test]
fn random_directions_keep_the_item_affine_encoding() {
    // Vectors spread evenly over all directions gain nothing from a rotation:
    // the writer keeps item-affine; forced principal axes still search
    // exactly over what they store.
    let its = items(1000, 64, 8);
    let t = ShopTable::from_bytes(table_bytes(&its, 64)).unwrap();
    assert_eq!(t.encoding(), Encoding::ItemAffine);
    let mut w = TableWriter::new("fp", 64).unwrap();
    for it in &its {
        w.push(it).unwrap();
    }
    w.force_encoding(Encoding::Principal { refined: 5 })
        .unwrap();
    let p = ShopTable::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(p.encoding(), Encoding::Principal { refined: 5 });
    let queries: Vec<Vec<f32>> = its
        .iter()
        .step_by(10)
        .map(|it| it.embedding.clone())
        .collect();
    let (_, stored) = top20_agreement(&p, &its, &queries);
    assert!(stored >= 0.99, "{stored}");
    assert!(w
        .force_encoding(Encoding::Principal { refined: 13 })
        .is_err());
    let mut big = TableWriter::new("fp", PCA_MAX_DIM + 1).unwrap();
    assert!(big
        .force_encoding(Encoding::Principal { refined: 1 })
        .is_err());
}

#[test]
fn int8_top20_matches_float_top20_on_random_data() {
    let dim = 128;
    let n = 2000;
    let its = items(n, dim, 7);
    let t = ShopTable::from_bytes(table_bytes(&its, dim)).unwrap();
    let flat: Vec<f32> = its.iter().flat_map(|it| it.embedding.clone()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let queries = 200;
    let (mut same_stored, mut same_orig) = (0, 0);
    let mut out = [Match::default(); 20];
    let sorted = |v: Vec<u32>| {
        let mut v = v;
        v.sort_unstable();
        v
    };
    for qi in 0..queries {
        // Queries are noisy views of catalogue items, as in In-shop retrieval.
        let base = &its[qi * 7 % n].embedding;
        let noise = unit(&mut rng, dim);
        let q: Vec<f32> = base.iter().zip(&noise).map(|(a, b)| a + 0.7 * b).collect();
        let got = t.search_into(&q, &mut out);
        assert_eq!(got, 20);
        let a = sorted(out.iter().map(|m| m.index).collect());
        // Float search over the stored (int8) vectors: the table's reference.
        let stored = t.search_float(&q, 20);
        same_stored += usize::from(a == sorted(stored.iter().map(|m| m.index).collect()));
        // Float search over the original float embeddings.
        let orig = search_float(&flat, dim, &q, 20);
        same_orig += usize::from(a == sorted(orig.iter().map(|m| m.index).collect()));
        assert_eq!(out[0].index, orig[0].index, "best hit differs");
    }
    let f_stored = same_stored as f64 / queries as f64;
    let f_orig = same_orig as f64 / queries as f64;
    eprintln!(
        "top-20 equal: {f_stored:.3} vs stored-vector float search, {f_orig:.3} vs original floats"
    );
    assert!(
        f_stored >= 0.99,
        "int8 top-20 == float top-20 for {f_stored:.3} of queries"
    );
    assert!(
        f_orig >= 0.80,
        "int8 top-20 == original-float top-20 for {f_orig:.3} of queries"
    );
}

#[test]
fn search_handles_small_tables_and_bad_queries() {
    let its = items(3, 16, 3);
    let t = ShopTable::from_bytes(table_bytes(&its, 16)).unwrap();
    let mut out = [Match::default(); 10];
    assert_eq!(t.search_into(&its[1].embedding, &mut out), 3);
    assert_eq!(out[0].index, 1);
    assert_eq!(t.search_into(&[0.0; 15], &mut out), 0);
    assert_eq!(t.search(&its[0].embedding, 0).len(), 0);
    let empty = ShopTable::from_bytes(table_bytes(&[], 16)).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.search(&its[0].embedding, 5).len(), 0);
}

#[test]
fn corrupted_tables_are_refused_with_clear_errors() {
    let dim = 32;
    let good = table_bytes(&items(50, dim, 5), dim);
    assert!(ShopTable::from_bytes(good.clone()).is_ok());

    for cut in [0usize, 10, 100, good.len() / 2, good.len() - 1] {
        let e = ShopTable::from_bytes(good[..cut].to_vec()).unwrap_err();
        assert!(matches!(e, TableError::Truncated { .. }), "cut {cut}: {e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
    // A flipped bit anywhere in the body or in the checksum.
    for pos in [
        30usize,
        200,
        good.len() / 2,
        good.len() - 40,
        good.len() - 1,
    ] {
        let mut b = good.clone();
        b[pos] ^= 0x10;
        let e = ShopTable::from_bytes(b).unwrap_err();
        assert!(matches!(e, TableError::Checksum { .. }), "pos {pos}: {e}");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
    }
    let mut b = good.clone();
    b[0] = b'X';
    let e = ShopTable::from_bytes(b).unwrap_err();
    assert!(e.to_string().contains("not a shop table"), "{e}");
    let mut b = good.clone();
    b[8] = 9;
    let e = ShopTable::from_bytes(b).unwrap_err();
    assert!(e.to_string().contains("version 9"), "{e}");
    let mut b = good.clone();
    b.push(0);
    assert!(ShopTable::from_bytes(b).is_err());
    // A header naming an unknown encoding or too many refined axes, with
    // the checksum recomputed so that the header check is what refuses it.
    for (code, refined, msg) in [
        (7u32, 0u32, "unknown encoding 7"),
        (1, 3, "item-affine encoding with 3 refined axes"),
        (2, 13, "13 refined axes (at most 12 for dimension 32)"),
    ] {
        let mut b = good.clone();
        b[128..132].copy_from_slice(&code.to_le_bytes());
        b[132..136].copy_from_slice(&refined.to_le_bytes());
        let body = b.len() - format::CHECKSUM_LEN;
        let sum = sha2::Sha256::digest(&b[..body]);
        b[body..].copy_from_slice(&sum);
        let e = ShopTable::from_bytes(b).unwrap_err();
        assert!(e.to_string().contains(msg), "{e}");
    }

    let t = ShopTable::from_bytes(good).unwrap();
    let e = t
        .check_model("ffffffffffffffffffffffffffffffff", dim)
        .unwrap_err();
    assert!(e.to_string().contains("another") || e.to_string().contains("built with model"));
    let e = t
        .check_model("0123456789abcdef0123456789abcdef", 64)
        .unwrap_err();
    assert!(e.to_string().contains("expected 64, found 32"), "{e}");
    t.check_model("0123456789abcdef0123456789abcdef", dim)
        .unwrap();
}

#[test]
fn open_names_missing_file_and_writer_refuses_bad_items() {
    let e = ShopTable::open(Path::new("/nonexistent/x.table")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.table"), "{e}");
    let mut w = TableWriter::new("fp", 4).unwrap();
    let mut it = TableItem {
        id: "a".into(),
        name: None,
        price: None,
        url: None,
        embedding: vec![0.0; 3],
    };
    assert!(w
        .push(&it)
        .unwrap_err()
        .to_string()
        .contains("expected 4, found 3"));
    it.embedding = vec![f32::NAN, 0.0, 0.0, 0.0];
    assert!(w.push(&it).is_err());
    it.embedding = vec![0.0; 4];
    it.id.clear();
    assert!(w.push(&it).is_err());
    assert!(w.is_empty());
    assert!(TableWriter::new("fp", 0).is_err());
    assert!(TableWriter::new(&"x".repeat(65), 4).is_err());
}

#[test]
fn item_quantization_uses_the_whole_code_range_around_the_mean() {
    let mean = [0.5f32, -0.25, 0.0, 1.0, 0.1];
    let x = [0.9f32, -0.25, -0.3, 1.2, 0.1];
    let mut c = [0i8; 5];
    let (offset, step) = quantize_item(&x, &mean, &mut c);
    // x - mean = [0.4, 0, -0.3, 0.2, 0]: range 0.7 over 255 steps, the
    // smallest difference on code -128 and the largest on 127.
    assert!((step - 0.7 / 255.0).abs() < 1e-7, "{step}");
    assert_eq!(c[2], -128);
    assert_eq!(c[0], 127);
    for j in 0..5 {
        let back = mean[j] + offset + step * f32::from(c[j]);
        assert!(
            (back - x[j]).abs() <= step / 2.0 + 1e-6,
            "{j}: {back} vs {}",
            x[j]
        );
    }
    // A vector equal to the mean plus a constant: step 0, exact.
    // (Binary fractions, so that every difference is exactly 0.5.)
    let mean = [0.5f32, -0.25, 0.0, 1.0, 0.125];
    let (offset, step) = quantize_item(&[1.0, 0.25, 0.5, 1.5, 0.625], &mean, &mut c);
    assert_eq!(step, 0.0);
    assert_eq!(offset, 0.5);
    assert_eq!(c, [0; 5]);
}

#[test]
fn identical_items_give_a_table_that_still_searches() {
    let mut its = items(4, 8, 11);
    let same = its[0].embedding.clone();
    for it in &mut its {
        it.embedding = same.clone();
    }
    let t = ShopTable::from_bytes(table_bytes(&its, 8)).unwrap();
    let m = t.search(&same, 4);
    assert_eq!(m.len(), 4);
    // Every item is stored exactly (as the mean): score = |same|^2 = 1.
    for x in &m {
        assert!((x.score - 1.0).abs() < 1e-5, "{}", x.score);
    }
    assert_eq!(
        m.iter().map(|x| x.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "ties go to the lower index"
    );
}
