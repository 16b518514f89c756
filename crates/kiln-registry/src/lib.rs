//! kiln-registry (to be written).
