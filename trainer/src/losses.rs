//! The training losses of DESIGN.md section 4. Every loss takes a mask of
//! what is annotated and averages over the annotated entries only (a batch
//! without any returns zero, still attached to the graph).

use tch::{Kind, Reduction, Tensor};

/// Mean over `mask` of `values` (same shape); zero when the mask is empty.
fn masked_mean(values: &Tensor, mask: &Tensor) -> Tensor {
    let mask = mask.to_kind(Kind::Float);
    (values * &mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
}

/// Landmark L2: squared distance between predicted and true `[N,8,2]`
/// coordinates, averaged over slots where `mask` (`[N,8]`: present and not
/// truncated) is set.
pub fn landmark_l2(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Tensor {
    let d = (pred.to_kind(Kind::Float) - target)
        .square()
        .sum_dim_intlist(&[-1i64][..], false, Kind::Float);
    masked_mean(&d, mask)
}

/// Visibility: softmax cross-entropy per slot (`logits [N,8,3]`, `target
/// [N,8]` int64 class), over present slots (`present [N,8]`).
pub fn visibility_ce(logits: &Tensor, target: &Tensor, present: &Tensor) -> Tensor {
    let lp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
    let nll = -lp
        .gather(2, &target.clamp(0, 2).unsqueeze(-1), false)
        .squeeze_dim(-1);
    masked_mean(&nll, present)
}

/// Category: softmax cross-entropy with label smoothing over samples with
/// `has_label` (`[N]` bool); `target [N]` int64 (any value where unlabeled).
pub fn category_ce(logits: &Tensor, target: &Tensor, has_label: &Tensor, smoothing: f64) -> Tensor {
    let logits = logits.to_kind(Kind::Float);
    let c = logits.size()[1];
    let lp = logits.log_softmax(-1, Kind::Float);
    let t = target.clamp(0, c - 1).unsqueeze(-1);
    let nll = -lp.gather(1, &t, false).squeeze_dim(-1);
    let smooth = -lp.mean_dim(&[-1i64][..], false, Kind::Float);
    let per = nll * (1.0 - smoothing) + smooth * smoothing;
    masked_mean(&per, has_label)
}

/// Attributes: sigmoid cross-entropy with a positive weight per attribute
/// (`logits`, `target` `[N,A]` in {0,1}, `pos_weight [A]`), over samples
/// with `has_label` (`[N]`), averaged over attributes.
pub fn attribute_bce(
    logits: &Tensor,
    target: &Tensor,
    pos_weight: &Tensor,
    has_label: &Tensor,
) -> Tensor {
    let per = logits
        .to_kind(Kind::Float)
        .binary_cross_entropy_with_logits::<&Tensor>(
            target,
            None,
            Some(pos_weight),
            Reduction::None,
        )
        .mean_dim(&[-1i64][..], false, Kind::Float);
    masked_mean(&per, has_label)
}

/// Positive weight per attribute from training counts: `neg / pos`,
/// clamped to `[1, max]` (attributes never positive get `max`).
pub fn attribute_pos_weight(positives: &[u64], total: u64, max: f64) -> Vec<f32> {
    positives
        .iter()
        .map(|&p| {
            if p == 0 {
                max as f32
            } else {
                (((total.saturating_sub(p)) as f64 / p as f64).clamp(1.0, max)) as f32
            }
        })
        .collect()
}

/// Triplet loss with batch-hard mining: for every anchor with at least one
/// positive and one negative in the batch, `relu(max d(a,p) - min d(a,n) +
/// margin)` with Euclidean distances between (L2-normalized) embeddings;
/// averaged over those anchors. `labels [N]` int64 item ids, where `valid`
/// (`[N]`) marks rows taking part.
pub fn triplet_batch_hard(emb: &Tensor, labels: &Tensor, valid: &Tensor, margin: f64) -> Tensor {
    let emb = emb.to_kind(Kind::Float);
    let n = emb.size()[0];
    let dot = emb.matmul(&emb.transpose(0, 1));
    let sq = emb
        .square()
        .sum_dim_intlist(&[1i64][..], false, Kind::Float);
    let d2 = (sq.view([n, 1]) + sq.view([1, n]) - dot * 2.0).clamp_min(1e-12);
    let d = d2.sqrt();
    let valid = valid.to_kind(Kind::Bool);
    let pair_valid = valid.view([n, 1]).logical_and(&valid.view([1, n]));
    let same = labels.view([n, 1]).eq_tensor(&labels.view([1, n]));
    let eye = Tensor::eye(n, (Kind::Bool, emb.device()));
    let pos = same
        .logical_and(&eye.logical_not())
        .logical_and(&pair_valid);
    let neg = same.logical_not().logical_and(&pair_valid);
    let big = 1e4;
    let hardest_pos = (&d * pos.to_kind(Kind::Float)).amax(&[1i64][..], false);
    let hardest_neg = (&d + neg.logical_not().to_kind(Kind::Float) * big).amin(&[1i64][..], false);
    let has = pos.any_dim(1, false).logical_and(&neg.any_dim(1, false));
    let per = (hardest_pos - hardest_neg + margin).relu();
    masked_mean(&per, &has)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn landmark_loss_ignores_masked_slots() {
        let pred = Tensor::zeros([1, 8, 2], (Kind::Float, tch::Device::Cpu));
        let mut tv = vec![0.0f32; 16];
        tv[0] = 0.3;
        tv[1] = 0.4; // slot 0: distance^2 0.25
        tv[2] = 10.0; // slot 1 masked out
        let target = t(&tv, &[1, 8, 2]);
        let mut mask = vec![0.0f32; 8];
        mask[0] = 1.0;
        let l = landmark_l2(&pred, &target, &t(&mask, &[1, 8]));
        assert!((l.double_value(&[]) - 0.25).abs() < 1e-6);
        let l0 = landmark_l2(
            &pred,
            &target,
            &Tensor::zeros([1, 8], (Kind::Float, tch::Device::Cpu)),
        );
        assert_eq!(l0.double_value(&[]), 0.0);
    }

    #[test]
    fn category_ce_matches_log_softmax_and_masks() {
        let logits = t(&[1.0, 2.0, 3.0, 0.0, 0.0, 9.0], &[2, 3]);
        let target = Tensor::from_slice(&[2i64, 0]);
        let has = Tensor::from_slice(&[true, false]);
        let l = category_ce(&logits, &target, &has, 0.0).double_value(&[]);
        let want = -(3.0f64 - (1f64.exp() + 2f64.exp() + 3f64.exp()).ln());
        assert!((l - want).abs() < 1e-5, "{l} vs {want}");
    }

    #[test]
    fn attribute_pos_weight_is_clamped_ratio() {
        assert_eq!(
            attribute_pos_weight(&[10, 0, 90], 100, 50.0),
            vec![9.0, 50.0, 1.0]
        );
    }

    #[test]
    fn triplet_is_zero_when_classes_separate_and_positive_otherwise() {
        // Two items, two views each; item embeddings orthogonal and identical within item.
        let e = t(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0], &[4, 2]);
        let labels = Tensor::from_slice(&[5i64, 5, 7, 7]);
        let valid = Tensor::from_slice(&[true, true, true, true]);
        let l = triplet_batch_hard(&e, &labels, &valid, 0.2).double_value(&[]);
        assert!(l < 1e-4, "{l}");
        let mixed = Tensor::from_slice(&[5i64, 7, 5, 7]);
        let l = triplet_batch_hard(&e, &mixed, &valid, 0.2).double_value(&[]);
        assert!((l - (2f64.sqrt() + 0.2)).abs() < 1e-4, "{l}");
    }

    #[test]
    fn visibility_ce_uses_target_class() {
        let logits = Tensor::zeros([1, 8, 3], (Kind::Float, tch::Device::Cpu));
        let target = Tensor::zeros([1, 8], (Kind::Int64, tch::Device::Cpu));
        let present = Tensor::ones([1, 8], (Kind::Float, tch::Device::Cpu));
        let l = visibility_ce(&logits, &target, &present).double_value(&[]);
        assert!((l - 3f64.ln()).abs() < 1e-6);
    }
}
