//! kiln-layer (to be written).
