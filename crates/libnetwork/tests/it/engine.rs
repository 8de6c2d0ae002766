//! The Engine gate: an unsupported Docker Engine gets every creating call refused with the
//! reason, and nothing written; releasing and deleting still work.

use calico_docker::engine::Unsupported;
use serde_json::json;

use crate::support::{config, Harness};

const NET: &str = "759a2c3444dff3420ebe9b44e42df9ce181ad5c223e1aeff4739f83cb9b2afe4";
const EP: &str = "0a930a258ae710a61c05b34d4d14149e19cc89dfa2290f8194b989906ad9a4ab";

#[tokio::test]
async fn an_unsupported_engine_creates_nothing_and_can_still_clean_up() {
    let h = Harness::start(config());
    let before = h.snapshot().await;
    h.driver
        .set_engine_support(Err(Unsupported::TooOld("19.03.15".into())));
    let refusal = "Docker Engine 19.03.15 is not supported: calico-docker needs Docker Engine \
                   20.10 or later (tested: 20.10 and 28)";
    let creating = [
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "CalicoGlobalAddressSpace", "Pool": "", "SubPool": "", "Options": {}, "V6": false}),
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "CalicoPoolIPv4", "Address": "", "Options": {}}),
        ),
        (
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": NET, "IPv4Data": [{"AddressSpace": "CalicoGlobalAddressSpace", "Gateway": "0.0.0.0/0", "Pool": "0.0.0.0/0"}], "IPv6Data": [], "Options": {}}),
        ),
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": NET, "EndpointID": EP, "Interface": {"Address": "192.168.1.1/32", "AddressIPv6": "", "MacAddress": ""}, "Options": {}}),
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/var/run/docker/netns/x", "Options": {}}),
        ),
    ];
    for (call, body) in creating {
        let reply = h.call(call, body).await;
        assert_eq!(reply.status, 500, "{call}: {}", reply.body);
        assert_eq!(reply.err(), refusal, "{call}");
    }
    assert_eq!(h.snapshot().await, before, "nothing written");
    assert!(h.ipam.assigned().is_empty(), "no address assigned");

    // Activation, capabilities and the calls that undo things still answer.
    h.ok("Plugin.Activate", json!({})).await;
    h.ok("NetworkDriver.GetCapabilities", json!({})).await;
    h.ok(
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": "CalicoPoolIPv4", "Address": "192.168.1.1"}),
    )
    .await;
    h.ok("NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}))
        .await;

    // A supported Engine (after a dockerd upgrade) opens the gate again.
    h.driver.set_engine_support(Ok(()));
    h.ok(
        "IpamDriver.RequestAddress",
        json!({"PoolID": "CalicoPoolIPv4", "Address": "", "Options": {}}),
    )
    .await;
}
