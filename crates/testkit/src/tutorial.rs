//! The documents of Calico's Docker tutorials, verbatim, for the tests that replay them:
//! "Security using Calico Profiles" ([`NET1_PROFILE`]) and "Security using Calico Profiles and
//! Policy" (the others).
//!
//! The database and frontend profiles of sections a.2 and b.2 differ only in their rules, and
//! those rules are the same in the policies of section b.3, so each piece is written once (as a
//! macro, for `concat!`).

/// `calicoctl get profile net1 -o yaml` for the profile the Docker plugin creates with network
/// `net1` (reference §4.4).
pub const NET1_PROFILE: &str = "\
- apiVersion: v1
  kind: profile
  metadata:
    name: net1
    tags:
    - net1
  spec:
    egress:
    - action: allow
    ingress:
    - action: allow
      source:
        tag: net1
";

/// The profile of role `database`, up to its `spec`.
macro_rules! database_profile {
    () => {
        "\
- apiVersion: v1
  kind: profile
  metadata:
    name: database
    labels:
      role: database
"
    };
}

/// The profile of role `frontend`, up to its `spec`.
macro_rules! frontend_profile {
    () => {
        "\
- apiVersion: v1
  kind: profile
  metadata:
    name: frontend
    labels:
      role: frontend
"
    };
}

/// The rules of role `database`, in a profile's or a policy's `spec`.
macro_rules! database_rules {
    () => {
        "    ingress:
    - action: allow
      protocol: tcp
      source:
        selector: role == 'frontend'
      destination:
        ports:
        -  3306
    - action: allow
      source:
        selector: role == 'database'
    egress:
    - action: allow
      destination:
        selector: role == 'database'
"
    };
}

/// The rules of role `frontend`, in a profile's or a policy's `spec`.
macro_rules! frontend_rules {
    () => {
        "    egress:
    - action: allow
      protocol: tcp
      destination:
        selector: role == 'database'
        ports:
        -  3306
"
    };
}

/// Section a.2: two profiles with `role` labels and selector rules (`calicoctl apply -f -`).
pub const PROFILES_WITH_RULES: &str = concat!(
    database_profile!(),
    "  spec:\n",
    database_rules!(),
    frontend_profile!(),
    "  spec:\n",
    frontend_rules!(),
);

/// Section b.2: the same two profiles with labels only.
pub const PROFILES_WITH_LABELS: &str = concat!(database_profile!(), frontend_profile!());

/// Section b.3: the two global policies (`calicoctl create -f -`).
pub const POLICIES: &str = concat!(
    "\
- apiVersion: v1
  kind: policy
  metadata:
    name: database
  spec:
    order: 0
    selector: role == 'database'
",
    database_rules!(),
    "\
- apiVersion: v1
  kind: policy
  metadata:
    name: frontend
  spec:
    order: 0
    selector: role == 'frontend'
",
    frontend_rules!(),
);
