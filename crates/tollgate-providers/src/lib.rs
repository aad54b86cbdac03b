//! Provider classifiers.
