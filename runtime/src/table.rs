//! The shop table as the runtime uses it: `deepfashion::shop_table` opened
//! from a file, with its path kept for messages, and item names exposed to
//! the outputs through [`crate::result::ShopNames`].

use crate::result::ShopNames;
use deepfashion::shop_table::{Match, ShopTable};
use std::path::{Path, PathBuf};

/// A table file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("table {path}: {reason}")]
pub struct TableError {
    /// The table file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// An open shop table.
pub struct Table {
    inner: ShopTable,
    path: PathBuf,
}

impl Table {
    /// Open (and verify) a table file.
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let inner = ShopTable::open(path).map_err(|e| TableError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fingerprint of the model that built it.
    pub fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the table has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying table.
    pub fn inner(&self) -> &ShopTable {
        &self.inner
    }

    /// Exact top-k search (k = `out.len()`); returns how many were written.
    /// Allocates nothing.
    pub fn search_into(&self, query: &[f32], out: &mut [Match]) -> usize {
        self.inner.search_into(query, out)
    }
}

impl ShopNames for Table {
    fn item_id(&self, index: u32) -> Option<&str> {
        if (index as usize) < self.inner.len() {
            Some(self.inner.item(index as usize).id)
        } else {
            None
        }
    }

    fn item_name(&self, index: u32) -> Option<&str> {
        if (index as usize) < self.inner.len() {
            self.inner.item(index as usize).name
        } else {
            None
        }
    }
}
