//! `export`: filled by its issue (see DESIGN.md section 2).
