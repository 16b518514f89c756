//! kiln-image (to be written).
