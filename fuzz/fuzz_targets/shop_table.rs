//! The shop table loader on damaged tables: refuses them with an error or
//! loads a table whose every item and search stay in bounds.
//!
//! Each input builds a small valid table (items and embeddings drawn from
//! the input), damages it (bytes overwritten at input-chosen offsets, or
//! the input's raw bytes appended or substituted), and, for half of the
//! inputs, repairs the SHA-256 checksum so that the header and record
//! checks behind it are reached rather than only the checksum.
#![no_main]

use deepfashion::shop_table::{ShopTable, TableItem, TableWriter};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const CHECKSUM_LEN: usize = 32;

fn exercise(table: &ShopTable) {
    let dim = table.dim();
    for i in 0..table.len().min(64) {
        let item = table.item(i);
        let _ = format!("{item:?}");
    }
    assert!(table.get(table.len()).is_none());
    let mut q = vec![0f32; dim];
    if dim > 0 {
        q[0] = 1.0;
    }
    let hits = table.search(&q, 5);
    assert!(hits.len() <= 5.min(table.len()));
    for h in hits {
        assert!((h.index as usize) < table.len());
    }
}

fn valid_table(data: &[u8]) -> Vec<u8> {
    let dim = 1 + (data.first().copied().unwrap_or(0) as usize % 16);
    let n = data.get(1).copied().unwrap_or(0) as usize % 6;
    let mut w = TableWriter::new("fuzz-model", dim).expect("writer");
    for i in 0..n {
        let mut e: Vec<f32> = (0..dim)
            .map(|j| *data.get(2 + i * dim + j).unwrap_or(&1) as f32 - 127.5)
            .collect();
        let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
        e.iter_mut().for_each(|v| *v /= norm);
        let text = String::from_utf8_lossy(data.get(2..2 + i).unwrap_or(b""));
        w.push(&TableItem {
            id: format!("id_{i:08}"),
            name: (i % 2 == 0).then(|| text.to_string()),
            price: None,
            url: (i % 3 == 0).then(|| "https://shop.example/x".to_string()),
            embedding: e,
        })
        .expect("push");
    }
    w.to_bytes()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mode = data[0] % 4;
    let rest = &data[1..];
    let mut bytes = match mode {
        // Raw input as a table.
        0 => rest.to_vec(),
        // A valid table with the input's raw bytes appended.
        1 => {
            let mut b = valid_table(rest);
            b.extend_from_slice(rest);
            b
        }
        // A valid table with input-chosen bytes overwritten.
        _ => {
            let mut b = valid_table(rest);
            for pair in rest.chunks_exact(3).take(8) {
                let at = u16::from_le_bytes([pair[0], pair[1]]) as usize % b.len();
                b[at] = pair[2];
            }
            b
        }
    };
    if let Ok(t) = ShopTable::from_bytes(bytes.clone()) {
        exercise(&t);
    }
    if data[0] & 0x80 != 0 && bytes.len() > CHECKSUM_LEN {
        let body = bytes.len() - CHECKSUM_LEN;
        let sum = Sha256::digest(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum);
        if let Ok(t) = ShopTable::from_bytes(bytes) {
            exercise(&t);
        }
    }
});
