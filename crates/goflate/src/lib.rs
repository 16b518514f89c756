//! goflate (to be written).
