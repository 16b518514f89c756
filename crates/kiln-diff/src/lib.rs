//! kiln-diff (being written).
