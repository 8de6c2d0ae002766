//! Which Docker Engine a daemon is, and whether calico-docker supports it: the one place that
//! says which releases are tested (pure; the client's [`crate::DockerClient::engine`] asks).

use std::fmt;

/// The oldest Engine release calico-docker is tested against (Debian 12's docker.io).
pub const OLDEST_SUPPORTED: (u32, u32) = (20, 10);
/// The Engine releases the test suite runs on, for messages.
pub const TESTED: &str = "20.10 and 28";
/// The file in calico-node's run directory (`CALICO_RUN_DIR`) that says, in one line, which
/// Engine calico-node last talked to and whether it is supported; `calicoctl` prints it.
pub const STATUS_FILE: &str = "docker-engine";

/// What `GET /version` says about the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    /// The release, as Docker prints it (e.g. `28.5.2` or `20.10.24+dfsg1`).
    pub version: String,
    /// The newest API version it speaks (e.g. `1.51`).
    pub api_version: String,
    /// The oldest API version it still accepts (e.g. `1.24`).
    pub min_api_version: String,
}

/// Why calico-docker refuses to work with an Engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// A release older than [`OLDEST_SUPPORTED`].
    #[error(
        "Docker Engine {0} is not supported: calico-docker needs Docker Engine 20.10 or later \
         (tested: {TESTED})"
    )]
    TooOld(String),
    /// A release that no longer accepts the API version the client speaks.
    #[error(
        "Docker Engine {version} is not supported: it accepts API {min_api_version} and later, \
         and calico-docker speaks API {client} (tested: {TESTED})"
    )]
    ApiTooOld {
        /// The Engine release.
        version: String,
        /// The oldest API version the Engine accepts.
        min_api_version: String,
        /// The API version the client speaks.
        client: String,
    },
    /// A version string that is not `MAJOR.MINOR[.PATCH][suffix]`.
    #[error("Docker Engine version '{0}' cannot be read as MAJOR.MINOR: cannot tell whether it is supported")]
    Unreadable(String),
}

impl Engine {
    /// `Ok` when calico-docker supports this Engine, else why not. `client_api` is the API
    /// version the client speaks (`1.41`).
    pub fn check(&self, client_api: &str) -> Result<(), Unsupported> {
        let release = major_minor(&self.version)
            .ok_or_else(|| Unsupported::Unreadable(self.version.clone()))?;
        if release < OLDEST_SUPPORTED {
            return Err(Unsupported::TooOld(self.version.clone()));
        }
        // An Engine that leaves the minimum out accepts everything; one that is unreadable
        // is judged by the request that fails instead.
        if let (Some(min), Some(client)) =
            (major_minor(&self.min_api_version), major_minor(client_api))
        {
            if min > client {
                return Err(Unsupported::ApiTooOld {
                    version: self.version.clone(),
                    min_api_version: self.min_api_version.clone(),
                    client: client_api.to_owned(),
                });
            }
        }
        Ok(())
    }
}

impl Engine {
    /// The one line of [`STATUS_FILE`]: `28.5.2 (API 1.51)`, or with `: <why>` when refused.
    pub fn status_line(&self, support: &Result<(), Unsupported>) -> String {
        match support {
            Ok(()) => self.to_string(),
            Err(why) => format!("{self}: {why}"),
        }
    }
}

impl fmt::Display for Engine {
    /// `28.5.2 (API 1.51)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (API {})", self.version, self.api_version)
    }
}

/// The leading `MAJOR.MINOR` of a version such as `20.10.24+dfsg1`, `28.5.2` or `1.41`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(version: &str, min_api: &str) -> Engine {
        Engine {
            version: version.into(),
            api_version: "1.41".into(),
            min_api_version: min_api.into(),
        }
    }

    #[test]
    fn tested_releases_and_later_ones_that_speak_our_api_are_supported() {
        for v in [
            "20.10.24+dfsg1",
            "20.10.0",
            "23.0.6",
            "28.5.2",
            "28.5.2+dfsg4",
            "100.1",
        ] {
            assert_eq!(engine(v, "1.12").check("1.41"), Ok(()), "{v}");
        }
        assert_eq!(engine("28.5.2", "").check("1.41"), Ok(()));
    }

    #[test]
    fn older_releases_are_refused_with_the_oldest_supported_one() {
        for v in ["19.03.15", "18.09.1", "1.13.1", "20.9.9", "0.1"] {
            let err = engine(v, "1.12").check("1.41").expect_err(v);
            assert_eq!(err, Unsupported::TooOld(v.into()));
            let text = err.to_string();
            assert!(
                text.contains(v) && text.contains("20.10 or later"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_engine_that_dropped_our_api_version_is_refused() {
        let err = engine("29.0.0", "1.44").check("1.41").expect_err("api");
        assert_eq!(
            err.to_string(),
            "Docker Engine 29.0.0 is not supported: it accepts API 1.44 and later, and \
             calico-docker speaks API 1.41 (tested: 20.10 and 28)"
        );
    }

    #[test]
    fn unreadable_versions_are_refused_not_guessed() {
        for v in ["", "dev", "28", "x.10", "28.x"] {
            assert_eq!(
                engine(v, "1.24").check("1.41"),
                Err(Unsupported::Unreadable(v.into())),
                "{v}"
            );
        }
    }
}
