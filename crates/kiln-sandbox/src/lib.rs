//! kiln-sandbox (to be written).
