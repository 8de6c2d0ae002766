//! Integration tests for calico-model (one binary, several modules). The tutorial documents
//! they decode are `calico_testkit::tutorial`'s, which the end-to-end tests replay.

mod backend_rule;
mod decode;
mod encode;
mod kinds;
mod roundtrip;
mod validation;
mod values;
