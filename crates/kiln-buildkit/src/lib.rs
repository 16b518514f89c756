//! kiln-buildkit (to be written).
