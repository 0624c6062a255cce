//! Examples live in the folders beside this crate; see README.md.
