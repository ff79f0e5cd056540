//! Fashion Landmark Detection benchmark: `Anno/list_landmarks.txt` (with
//! the variation column), `Anno/list_bbox.txt`, `Eval/list_eval_partition.txt`.

use super::join::{
    check_split, optional, partition_path, read_landmarks, read_plain_bbox, required, Join,
};
use super::listfile::{Layout, Reader};
use super::{parse, DataError, Dataset, ImageRecord};

/// Read the landmark benchmark into `ds`.
pub(crate) fn load(r: &mut Reader, ds: &mut Dataset) -> Result<(), DataError> {
    let anno = ds.root.join("Anno");
    let part = partition_path(&ds.root, &[&anno])?;
    let mut join = Join::new(&part);
    r.read(&part, Layout::CountHeader, |toks, _| {
        let (image, status) = parse::image_status(toks)?;
        check_split(&status, &["train", "val", "test"])?;
        join.insert(ImageRecord::new(image, status))
    })?;
    read_landmarks(r, &required(&anno, "list_landmarks.txt")?, &mut join)?;
    if let Some(p) = optional(&anno, "list_bbox.txt") {
        read_plain_bbox(r, &p, &mut join)?;
    }
    ds.images = join.images;
    Ok(())
}
