//! Analytical time model v1 (to be written).
