//! What each benchmark contains: garments, items, views, image names and
//! splits, all decided up front from the seed (cheap, sequential), so the
//! expensive rendering can run in parallel in any order and still give
//! byte-identical output.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::garment::GarmentSpec;
use super::labels::{Kind, COARSE_ATTRIBUTES};
use super::scene::{Backdrop, View};

/// One image to render.
pub struct Job {
    /// Name as written in the annotation files (`img/...jpg`).
    pub name: String,
    /// Index into [`Plan::garments`].
    pub garment: usize,
    /// How the image is taken.
    pub view: View,
    /// Seed of the image's own random stream.
    pub seed: u64,
}

/// A Category & Attribute image.
pub struct AttrEntry {
    /// Index into [`Plan::jobs`].
    pub job: usize,
    /// train / val / test.
    pub split: &'static str,
    /// Coarse attributes written as 0 ("unknown") instead of -1.
    pub unknown: Vec<usize>,
}

/// An In-shop image.
pub struct InShopEntry {
    /// Job index.
    pub job: usize,
    /// Item id number.
    pub item: u32,
    /// 1 front, 2 side, 3 back, 4 full (zoom-out).
    pub pose_type: u8,
    /// train / query / gallery.
    pub status: &'static str,
}

/// A consumer-to-shop item.
pub struct C2sItem {
    /// Item id number.
    pub item: u32,
    /// Shop image jobs.
    pub shop: Vec<usize>,
    /// Consumer image jobs.
    pub consumer: Vec<usize>,
    /// train / val / test.
    pub status: &'static str,
}

/// A landmark-benchmark image.
pub struct LandmarkEntry {
    /// Job index.
    pub job: usize,
    /// train / val / test.
    pub split: &'static str,
}

/// The whole dataset, before rendering.
pub struct Plan {
    /// Garment specs (items).
    pub garments: Vec<GarmentSpec>,
    /// Every image of every benchmark.
    pub jobs: Vec<Job>,
    /// Benchmark folder of each job (index into [`BENCHMARKS`]).
    pub bench_of_job: Vec<usize>,
    /// Category & Attribute images, sorted by name.
    pub attr: Vec<AttrEntry>,
    /// In-shop images, sorted by name.
    pub inshop: Vec<InShopEntry>,
    /// In-shop item ids in increasing order.
    pub inshop_items: Vec<u32>,
    /// Consumer-to-shop items in increasing id order.
    pub c2s: Vec<C2sItem>,
    /// Landmark-benchmark images in name order.
    pub landmark: Vec<LandmarkEntry>,
}

/// The released benchmark folder names, in [`Plan::bench_of_job`] order.
pub const BENCHMARKS: [&str; 4] = [
    "Category and Attribute Prediction Benchmark",
    "In-shop Clothes Retrieval Benchmark",
    "Consumer-to-shop Clothes Retrieval Benchmark",
    "Fashion Landmark Detection Benchmark",
];

fn pick_kind(rng: &mut impl Rng) -> Kind {
    let total: u32 = Kind::ALL.iter().map(|k| k.1).sum();
    let mut r = rng.gen_range(0..total);
    for (k, w) in Kind::ALL {
        if r < w {
            return k;
        }
        r -= w;
    }
    Kind::Tee
}

fn sym(rng: &mut impl Rng, a: f32) -> f32 {
    rng.gen_range(-a..=a)
}

/// Split `n` shuffled positions into train/val/test of about 70/15/15 with
/// every part non-empty when `n >= 3`.
fn three_way(
    rng: &mut impl Rng,
    n: usize,
    names: [&'static str; 3],
    fracs: [f32; 2],
) -> Vec<&'static str> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let n_b = ((n as f32 * fracs[0]).round() as usize)
        .max(1)
        .min(n.saturating_sub(2));
    let n_c = ((n as f32 * fracs[1]).round() as usize)
        .max(1)
        .min(n.saturating_sub(1 + n_b));
    let mut out = vec![names[0]; n];
    for (pos, &i) in order.iter().enumerate() {
        if pos < n_b {
            out[i] = names[1];
        } else if pos < n_b + n_c {
            out[i] = names[2];
        }
    }
    out
}

struct Builder {
    rng: ChaCha8Rng,
    plan: Plan,
}

impl Builder {
    fn garment(&mut self, kind: Kind) -> usize {
        let g = GarmentSpec::sample(&mut self.rng, kind);
        self.plan.garments.push(g);
        self.plan.garments.len() - 1
    }

    fn job(&mut self, bench: usize, name: String, garment: usize, view: View) -> usize {
        let seed = self.rng.gen();
        self.plan.jobs.push(Job {
            name,
            garment,
            view,
            seed,
        });
        self.plan.bench_of_job.push(bench);
        self.plan.jobs.len() - 1
    }

    fn everyday_view(&mut self, backdrop: Backdrop) -> View {
        let r = &mut self.rng;
        let large = r.gen_bool(0.15);
        View {
            back: false,
            fill: r.gen_range(0.5..0.85),
            rotation: sym(r, if large { 0.4 } else { 0.15 }),
            flip: r.gen_bool(0.5),
            squash: if r.gen_bool(0.15) {
                r.gen_range(0.72..0.95)
            } else {
                1.0
            },
            offset: (sym(r, 0.08), sym(r, 0.08)),
            light: r.gen_range(0.8..1.2),
            backdrop,
            occluders: if r.gen_bool(0.25) {
                1 + r.gen_bool(0.2) as u8
            } else {
                0
            },
            cut: r.gen_bool(0.18),
            consumer: r.gen_bool(0.1),
        }
    }

    fn shop_view(&mut self, pose: u8) -> View {
        let r = &mut self.rng;
        View {
            back: pose == 3,
            fill: if pose == 4 {
                r.gen_range(0.4..0.55)
            } else {
                r.gen_range(0.6..0.85)
            },
            rotation: sym(r, 0.08),
            flip: pose == 2 && r.gen_bool(0.5),
            squash: if pose == 2 {
                r.gen_range(0.6..0.75)
            } else {
                1.0
            },
            offset: (sym(r, 0.05), sym(r, 0.05)),
            light: r.gen_range(0.85..1.15),
            backdrop: Backdrop::Studio,
            occluders: r.gen_bool(0.08) as u8,
            cut: r.gen_bool(0.06),
            consumer: false,
        }
    }

    fn consumer_view(&mut self) -> View {
        let r = &mut self.rng;
        View {
            back: r.gen_bool(0.1),
            fill: r.gen_range(0.45..0.9),
            rotation: sym(r, 0.35),
            flip: r.gen_bool(0.5),
            squash: if r.gen_bool(0.3) {
                r.gen_range(0.7..1.0)
            } else {
                1.0
            },
            offset: (sym(r, 0.1), sym(r, 0.1)),
            light: r.gen_range(0.65..1.3),
            backdrop: if r.gen_bool(0.7) {
                Backdrop::Busy
            } else {
                Backdrop::Indoor
            },
            occluders: if r.gen_bool(0.4) {
                1 + r.gen_bool(0.25) as u8
            } else {
                0
            },
            cut: r.gen_bool(0.25),
            consumer: true,
        }
    }

    fn landmark_view(&mut self) -> View {
        let mut v = self.everyday_view(Backdrop::Indoor);
        let r = &mut self.rng;
        v.cut = false;
        v.consumer = r.gen_bool(0.15);
        let sign = if r.gen_bool(0.5) { 1.0 } else { -1.0 };
        match r.gen_range(0..100) {
            0..=39 => {
                v.rotation = sym(r, 0.1);
                v.squash = 1.0;
            }
            40..=64 => {
                v.rotation = sign * r.gen_range(0.14..0.28);
                v.squash = 1.0;
            }
            65..=79 => {
                v.rotation = sign * r.gen_range(0.32..0.5);
                v.squash = r.gen_range(0.65..0.8);
            }
            80..=91 => v.fill = r.gen_range(1.0..1.1),
            _ => v.fill = r.gen_range(1.2..1.4),
        }
        v
    }
}

/// Decide the dataset for `images` Category & Attribute images (the other
/// benchmarks in proportion: In-shop and consumer-to-shop about `images/2`
/// each, landmarks `images/4`).
pub fn plan(seed: u64, images: usize) -> Plan {
    let mut b = Builder {
        rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_DEEF_FA51_0000),
        plan: Plan {
            garments: Vec::new(),
            jobs: Vec::new(),
            bench_of_job: Vec::new(),
            attr: Vec::new(),
            inshop: Vec::new(),
            inshop_items: Vec::new(),
            c2s: Vec::new(),
            landmark: Vec::new(),
        },
    };

    // Category & Attribute (+ fine on the same images).
    let mut per_folder: BTreeMap<String, u32> = BTreeMap::new();
    let mut attr_jobs = Vec::with_capacity(images);
    for _ in 0..images {
        let kind = pick_kind(&mut b.rng);
        let g = b.garment(kind);
        let titles = kind.titles();
        let title = titles[b.rng.gen_range(0..titles.len())];
        let folder = format!("{title}_{}", kind.category_name());
        let count = per_folder.entry(folder.clone()).or_insert(0);
        *count += 1;
        let name = format!("img/{folder}/img_{:08}.jpg", *count);
        let backdrop = match b.rng.gen_range(0..100) {
            0..=19 => Backdrop::Studio,
            20..=84 => Backdrop::Indoor,
            _ => Backdrop::Busy,
        };
        let view = b.everyday_view(backdrop);
        attr_jobs.push(b.job(0, name, g, view));
    }
    let splits = three_way(&mut b.rng, images, ["train", "val", "test"], [0.15, 0.15]);
    let mut attr: Vec<AttrEntry> = attr_jobs
        .iter()
        .zip(splits)
        .map(|(&job, split)| {
            let unknown = (0..COARSE_ATTRIBUTES.len())
                .filter(|_| b.rng.gen_bool(0.03))
                .collect();
            AttrEntry {
                job,
                split,
                unknown,
            }
        })
        .collect();
    attr.sort_by(|x, y| b.plan.jobs[x.job].name.cmp(&b.plan.jobs[y.job].name));
    b.plan.attr = attr;

    // In-shop: items with 2-4 views.
    let target = (images / 2).max(8);
    let mut item = 0u32;
    let mut items: Vec<(u32, Vec<(usize, u8)>)> = Vec::new();
    let mut n_img = 0;
    while n_img < target || items.len() < 4 {
        item += b.rng.gen_range(1..=2);
        let kind = pick_kind(&mut b.rng);
        let g = b.garment(kind);
        let folders = kind.inshop_folders();
        let (gender, folder) = folders[b.rng.gen_range(0..folders.len())];
        let nn = b.rng.gen_range(1..=7);
        let k = b.rng.gen_range(2..=4usize);
        let mut others = [2u8, 3, 4];
        others.shuffle(&mut b.rng);
        let mut poses = vec![1u8];
        poses.extend_from_slice(&others[..k - 1]);
        poses.sort_unstable();
        let mut views = Vec::new();
        for pose in poses {
            let pname = ["front", "side", "back", "full"][pose as usize - 1];
            let name = format!("img/{gender}/{folder}/id_{item:08}/{nn:02}_{pose}_{pname}.jpg");
            let view = b.shop_view(pose);
            views.push((b.job(1, name, g, view), pose));
        }
        n_img += views.len();
        items.push((item, views));
    }
    let n_items = items.len();
    let mut order: Vec<usize> = (0..n_items).collect();
    order.shuffle(&mut b.rng);
    let n_train = n_items / 2;
    let mut is_train = vec![false; n_items];
    for &i in &order[..n_train] {
        is_train[i] = true;
    }
    for (idx, (id, views)) in items.iter_mut().enumerate() {
        b.plan.inshop_items.push(*id);
        let mut statuses = vec!["train"; views.len()];
        if !is_train[idx] {
            let mut pos: Vec<usize> = (0..views.len()).collect();
            pos.shuffle(&mut b.rng);
            let q = (views.len() / 2).max(1);
            for (rank, &p) in pos.iter().enumerate() {
                statuses[p] = if rank < q { "query" } else { "gallery" };
            }
        }
        for (&(job, pose_type), status) in views.iter().zip(statuses) {
            b.plan.inshop.push(InShopEntry {
                job,
                item: *id,
                pose_type,
                status,
            });
        }
    }
    let jobs = &b.plan.jobs;
    b.plan
        .inshop
        .sort_by(|x, y| jobs[x.job].name.cmp(&jobs[y.job].name));

    // Consumer-to-shop: items with 1-2 shop and 1-3 consumer images.
    let target = (images / 2).max(9);
    let mut item = 0u32;
    let mut n_img = 0;
    let mut c2s = Vec::new();
    while n_img < target || c2s.len() < 3 {
        item += b.rng.gen_range(1..=3);
        let kind = pick_kind(&mut b.rng);
        let g = b.garment(kind);
        let (group, folder) = kind.consumer2shop_folder();
        let n_shop = b.rng.gen_range(1..=2);
        let n_cons = b.rng.gen_range(1..=3);
        let mut shop = Vec::new();
        let mut consumer = Vec::new();
        for i in 1..=n_shop {
            let name = format!("img/{group}/{folder}/id_{item:08}/shop_{i:02}.jpg");
            let view = b.shop_view(1);
            shop.push(b.job(2, name, g, view));
        }
        for i in 1..=n_cons {
            let name = format!("img/{group}/{folder}/id_{item:08}/comsumer_{i:02}.jpg");
            let view = b.consumer_view();
            consumer.push(b.job(2, name, g, view));
        }
        n_img += n_shop + n_cons;
        c2s.push(C2sItem {
            item,
            shop,
            consumer,
            status: "train",
        });
    }
    let statuses = three_way(
        &mut b.rng,
        c2s.len(),
        ["train", "val", "test"],
        [0.25, 0.25],
    );
    for (it, s) in c2s.iter_mut().zip(statuses) {
        it.status = s;
    }
    b.plan.c2s = c2s;

    // Fashion Landmark Detection.
    let n_lm = (images / 4).max(6);
    let mut lm_jobs = Vec::new();
    for i in 0..n_lm {
        let kind = pick_kind(&mut b.rng);
        let g = b.garment(kind);
        let view = b.landmark_view();
        lm_jobs.push(b.job(3, format!("img/img_{:08}.jpg", i + 1), g, view));
    }
    let splits = three_way(&mut b.rng, n_lm, ["train", "val", "test"], [0.15, 0.15]);
    b.plan.landmark = lm_jobs
        .into_iter()
        .zip(splits)
        .map(|(job, split)| LandmarkEntry { job, split })
        .collect();
    b.plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sizes_splits_and_names() {
        let p = plan(7, 40);
        assert_eq!(p.attr.len(), 40);
        for s in ["train", "val", "test"] {
            assert!(p.attr.iter().any(|e| e.split == s), "{s}");
            assert!(p.c2s.iter().any(|e| e.status == s), "{s}");
            assert!(p.landmark.iter().any(|e| e.split == s), "{s}");
        }
        let train = p.attr.iter().filter(|e| e.split == "train").count();
        assert!((24..=32).contains(&train), "{train}");
        assert!(p.inshop.len() >= 20);
        // Query and gallery share items; train items are disjoint from them.
        let items_of = |st: &str| -> std::collections::BTreeSet<u32> {
            p.inshop
                .iter()
                .filter(|e| e.status == st)
                .map(|e| e.item)
                .collect()
        };
        assert_eq!(items_of("query"), items_of("gallery"));
        assert!(items_of("train").is_disjoint(&items_of("query")));
        assert!(!items_of("train").is_empty() && !items_of("query").is_empty());
        let mut names: Vec<&str> = p.jobs.iter().map(|j| j.name.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n - count_dupes_across_benchmarks(&p));
    }

    /// Names are unique within a benchmark (different benchmarks may reuse
    /// `img/img_00000001.jpg`-style names).
    fn count_dupes_across_benchmarks(p: &Plan) -> usize {
        let mut seen = std::collections::BTreeSet::new();
        let mut dup = 0;
        for (j, b) in p.jobs.iter().zip(&p.bench_of_job) {
            if !seen.insert((j.name.as_str(), *b)) {
                panic!("duplicate name {} in benchmark {b}", j.name);
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for j in &p.jobs {
            if !names.insert(j.name.as_str()) {
                dup += 1;
            }
        }
        dup
    }
}
