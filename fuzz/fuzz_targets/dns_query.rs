//! DNS queries come from any container: parsing must never panic, and every response built
//! for a query that parses must fit the UDP limit and echo the query's id.
#![no_main]

use calico_dns::wire::{formerr, Query, UDP_MAX};
use calico_dns::{Lookup, Names};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = formerr(data);
    let Ok(query) = Query::parse(data) else {
        return;
    };
    let mut names = Names::new();
    names.upsert("ep", "workload-a", &["net1".to_string()], &[[192, 168, 0, 1].into()]);
    let addrs = match names.lookup(&query.name) {
        Lookup::Addrs(addrs) => addrs,
        Lookup::NoSuchName | Lookup::NotOurs => vec![[10, 0, 0, 1].into(); 40],
    };
    for response in [
        query.answer(&addrs, 5, UDP_MAX),
        query.nodata(),
        query.nxdomain(),
        query.servfail(),
        query.notimp(),
    ] {
        assert!(response.len() <= UDP_MAX || data.len() > UDP_MAX);
        assert_eq!(response[..2], query.id.to_be_bytes());
    }
});
