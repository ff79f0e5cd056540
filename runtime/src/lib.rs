//! `fashion-runtime`: filled by its issue (see DESIGN.md section 9).
