//! Column-aligned tables as calicoctl prints them (Go tabwriter: minimum width 5, padding 3).

const MIN_WIDTH: usize = 5;
const PADDING: usize = 3;

/// Renders a heading row and data rows; every cell, the last included, is padded.
pub fn render(headings: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in std::iter::once(headings).chain(rows.iter().map(Vec::as_slice)) {
        for (cell, width) in row.iter().zip(&widths) {
            let width = (width + PADDING).max(MIN_WIDTH);
            out.push_str(&format!("{cell:<width$}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_every_column_to_the_widest_cell_plus_three() {
        let headings = vec!["NAME".to_string(), "TAGS".to_string()];
        let rows = vec![
            vec!["database".to_string(), "".to_string()],
            vec!["fe".to_string(), "a,b".to_string()],
        ];
        assert_eq!(
            render(&headings, &rows),
            "NAME       TAGS   \ndatabase          \nfe         a,b    \n"
        );
    }

    #[test]
    fn short_columns_get_the_minimum_width() {
        assert_eq!(render(&["A".to_string()], &[]), "A    \n");
    }
}
