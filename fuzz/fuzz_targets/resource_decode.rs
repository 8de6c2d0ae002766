//! Decoding calicoctl input (YAML or JSON, one or many resources) must never panic, and
//! whatever decodes must encode and decode back to the same resources.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(resources) = calico_model::codec::decode(text) {
        let yaml = calico_model::codec::to_yaml(&resources);
        let back = calico_model::codec::decode(&yaml).expect("encoded YAML decodes");
        assert_eq!(back, resources);
    }
});
