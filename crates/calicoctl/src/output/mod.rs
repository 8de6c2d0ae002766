//! How `calicoctl get` prints resources: ps/wide/custom-columns tables, YAML and JSON.

mod columns;
pub mod table;

use std::fmt;

use calico_model::{codec, Kind, Resource};

pub use columns::Context;

/// The `-o/--output` formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The default table.
    Ps,
    /// The table with more columns.
    Wide,
    /// Chosen columns, by heading.
    Columns(Vec<String>),
    /// A YAML list of resources.
    Yaml,
    /// A JSON list of resources.
    Json,
}

/// An `-o` value calicoctl does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFormat(String);

impl fmt::Display for BadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Format {
    /// Parses an `-o` value (`ps`, `wide`, `yaml`, `json`, `custom-columns=A,B`).
    pub fn parse(value: &str) -> Result<Format, BadFormat> {
        match value {
            "ps" => return Ok(Format::Ps),
            "wide" => return Ok(Format::Wide),
            "yaml" => return Ok(Format::Yaml),
            "json" => return Ok(Format::Json),
            _ => {}
        }
        match value.split_once('=') {
            Some(("custom-columns", "")) => Err(BadFormat(
                "need to specify at least one column".to_string(),
            )),
            Some(("custom-columns", list)) => Ok(Format::Columns(
                list.split(',').map(str::to_string).collect(),
            )),
            Some(("go-template" | "go-template-file", _)) => Err(BadFormat(format!(
                "output format '{value}' is not supported; use ps, wide, yaml, json or custom-columns=..."
            ))),
            _ => Err(BadFormat(format!("unrecognized output format '{value}'"))),
        }
    }

    /// Validates custom headings for a kind before anything is fetched.
    pub fn check_headings(&self, kind: Kind) -> Result<(), BadFormat> {
        if let Format::Columns(headings) = self {
            for heading in headings {
                if !columns::all_headings(kind).contains(&heading.as_str()) {
                    return Err(BadFormat(format!(
                        "Unknown heading {heading}, valid values are: {}",
                        columns::all_headings(kind).join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}

/// One query's results: the kind asked for and what matched.
pub struct Group {
    pub kind: Kind,
    pub resources: Vec<Resource>,
}

/// Renders the results of a `get`: a table per group (each followed by a blank line), or one
/// YAML/JSON list of everything.
pub fn render(format: &Format, groups: &[Group], ctx: &Context) -> String {
    match format {
        Format::Yaml => codec::to_yaml(&flatten(groups)),
        Format::Json => {
            let mut out = codec::to_json(&flatten(groups));
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out
        }
        Format::Ps | Format::Wide | Format::Columns(_) => {
            let mut out = String::new();
            for group in groups {
                let headings = match format {
                    Format::Columns(h) => h.clone(),
                    _ => columns::default_headings(group.kind, *format == Format::Wide)
                        .iter()
                        .map(|h| h.to_string())
                        .collect(),
                };
                let rows: Vec<Vec<String>> = group
                    .resources
                    .iter()
                    .map(|r| headings.iter().map(|h| columns::cell(r, h, ctx)).collect())
                    .collect();
                out.push_str(&table::render(&headings, &rows));
                out.push('\n');
            }
            out
        }
    }
}

fn flatten(groups: &[Group]) -> Vec<Resource> {
    groups
        .iter()
        .flat_map(|g| g.resources.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calicoctl_output_formats() {
        assert_eq!(Format::parse("ps"), Ok(Format::Ps));
        assert_eq!(
            Format::parse("custom-columns=NAME,TAGS"),
            Ok(Format::Columns(vec!["NAME".into(), "TAGS".into()]))
        );
        assert_eq!(
            Format::parse("custom-columns=").unwrap_err().to_string(),
            "need to specify at least one column"
        );
        assert_eq!(
            Format::parse("xml").unwrap_err().to_string(),
            "unrecognized output format 'xml'"
        );
    }

    #[test]
    fn unknown_heading_lists_the_valid_ones() {
        let f = Format::parse("custom-columns=NAME,NOPE").unwrap();
        assert_eq!(
            f.check_headings(Kind::Profile).unwrap_err().to_string(),
            "Unknown heading NOPE, valid values are: NAME, TAGS"
        );
        assert!(f.check_headings(Kind::Policy).is_err());
        let ok = Format::parse("custom-columns=SELECTOR,NAME").unwrap();
        assert!(ok.check_headings(Kind::Policy).is_ok());
    }
}
