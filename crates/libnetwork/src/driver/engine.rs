//! The Engine gate: once calico-node knows that the Docker Engine it serves is one calico-docker
//! does not support, every call that would create something is refused with the reason, while
//! calls that release or delete still run (so nothing already made is stranded).

use std::sync::PoisonError;

use calico_docker::engine::Unsupported;

use super::{Driver, DriverError};
use crate::wire::Call;

impl Driver {
    /// Records whether the Engine Docker runs is supported; `Err` closes the gate.
    pub fn set_engine_support(&self, support: Result<(), Unsupported>) {
        *self
            .inner
            .engine_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = support.err();
    }

    /// `Plugin.Activate`: a dockerd (re)started, and it may be another Engine.
    pub fn activated(&self) {
        self.inner.activations.notify_waiters();
    }

    /// Waits for the next `Plugin.Activate`.
    pub async fn next_activation(&self) {
        self.inner.activations.notified().await;
    }

    /// `Err` when `call` would create something and the Engine is not supported. An Engine not
    /// known yet (Docker has not answered) is let through: it is judged once it answers.
    pub fn check_engine(&self, call: Call) -> Result<(), DriverError> {
        if !creates(call) {
            return Ok(());
        }
        match &*self
            .inner
            .engine_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(why) => Err(DriverError::UnsupportedEngine(why.clone())),
            None => Ok(()),
        }
    }
}

/// The calls that make networks, pools, addresses, endpoints or interfaces.
fn creates(call: Call) -> bool {
    matches!(
        call,
        Call::CreateNetwork
            | Call::AllocateNetwork
            | Call::CreateEndpoint
            | Call::Join
            | Call::ProgramExternalConnectivity
            | Call::RequestPool
            | Call::RequestAddress
    )
}
