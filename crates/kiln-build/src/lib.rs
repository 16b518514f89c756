//! kiln-build (to be written).
