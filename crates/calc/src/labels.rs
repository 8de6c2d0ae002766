//! Label inheritance: an endpoint's effective labels from its own labels and its profiles.

use std::collections::BTreeMap;

/// A label map (key → value).
pub(crate) type LabelMap = BTreeMap<String, String>;

/// What a profile gives the endpoints that use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inherited {
    /// Explicit labels.
    pub(crate) labels: LabelMap,
    /// Tags; a tag `X` reads as the label `X=""`.
    pub(crate) tags: Vec<String>,
}

impl Inherited {
    /// True when the profile gives nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.tags.is_empty()
    }
}

/// An endpoint's effective labels, as Felix looks a key up: the endpoint's own labels first,
/// then each profile in the endpoint's order — its labels, then its tags. The first hit wins.
/// A missing profile (`None`) gives nothing.
pub(crate) fn effective<'a>(
    own: &LabelMap,
    profiles: impl IntoIterator<Item = Option<&'a Inherited>>,
) -> LabelMap {
    let mut labels = own.clone();
    for inherited in profiles.into_iter().flatten() {
        for (key, value) in &inherited.labels {
            labels.entry(key.clone()).or_insert_with(|| value.clone());
        }
        for tag in &inherited.tags {
            labels.entry(tag.clone()).or_default();
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn endpoint_then_profiles_in_order_labels_before_tags() {
        let first = Inherited {
            labels: map(&[("role", "first"), ("x", "label")]),
            tags: vec!["tier".to_owned(), "x".to_owned()],
        };
        let second = Inherited {
            labels: map(&[("role", "second"), ("tier", "db"), ("zone", "z")]),
            tags: vec!["net".to_owned()],
        };
        let labels = effective(
            &map(&[("role", "own")]),
            [Some(&first), None, Some(&second)],
        );
        assert_eq!(
            labels,
            map(&[
                ("role", "own"),
                ("x", "label"),
                ("tier", ""),
                ("zone", "z"),
                ("net", "")
            ])
        );
    }

    #[test]
    fn no_profiles_means_own_labels() {
        let own = map(&[("a", "b")]);
        assert_eq!(effective(&own, []), own);
        assert!(Inherited::default().is_empty());
    }
}
