//! Per-frame result type and JSON-lines schema (written by the outputs engineer).
