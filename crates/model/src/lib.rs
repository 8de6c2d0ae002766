//! Calico v1 API resources (the `calicoctl` v1.x resource model): typed resources, Calico's
//! validation rules, the YAML/JSON codec, and the datastore form of rules.
//!
//! ```
//! use calico_model::codec;
//!
//! let yaml = "
//! - apiVersion: v1
//!   kind: profile
//!   metadata:
//!     name: frontend
//!     labels:
//!       role: frontend
//!   spec:
//!     egress:
//!     - action: allow
//!       protocol: tcp
//!       destination:
//!         selector: role == 'database'
//!         ports: [3306]
//! ";
//! let resources = codec::decode(yaml).unwrap();
//! assert_eq!(resources[0].key().unwrap().to_string(), "Profile(name=frontend)");
//! assert!(codec::to_yaml(&resources).contains("    - 3306\n"));
//! ```

#![warn(missing_docs)]

mod backend_rule;
pub mod codec;
pub mod endpoint_naming;
mod key;
mod kind;
mod resources;
mod rule;
mod serde_util;
mod validate;
mod values;

pub use backend_rule::BackendRule;
pub use key::{InsufficientIdentifiers, ResourceKey};
pub use kind::Kind;
pub use resources::*;
pub use rule::{EntityRule, IcmpFields, Rule};
pub use validate::{FieldError, ValidationErrors};
pub use values::{AsNumber, Cidr, InvalidValue, MacAddr, Port, Protocol};
