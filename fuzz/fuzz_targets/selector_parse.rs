//! The selector parser must never panic, and whatever parses must re-parse from its
//! canonical form to the same meaning-preserving canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sel) = calico_selector::parse(text) {
        let again = calico_selector::parse(sel.canonical())
            .expect("a canonical selector always parses");
        let third = calico_selector::parse(again.canonical())
            .expect("a canonical selector always parses");
        assert_eq!(again.canonical(), third.canonical());
    }
});
