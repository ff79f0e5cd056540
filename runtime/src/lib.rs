//! `fashion-runtime`: FashionNet on the board (see DESIGN.md sections 8, 9, 11).

pub mod outputs;
pub mod result;
