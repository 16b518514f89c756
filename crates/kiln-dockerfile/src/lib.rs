//! kiln-dockerfile (to be written).
