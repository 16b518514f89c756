//! Differences and how they are shown: a `TYPE  NAME  INPUT-0  INPUT-1` table (as diffoci
//! prints it) or JSON.

use serde::Serialize;

/// What a difference is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Category {
    Index,
    Manifest,
    Config,
    Layer,
    File,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Index => "Index",
            Category::Manifest => "Manifest",
            Category::Config => "Config",
            Category::Layer => "Layer",
            Category::File => "File",
        }
    }
}

/// One difference between the two inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    #[serde(rename = "type")]
    pub category: Category,
    /// Where: a JSON path (`config.Env[1]`), a layer (`layers[0]`) or a file path (prefixed
    /// with its layer, `layers[0]/etc/passwd`, unless the comparison is semantic).
    pub name: String,
    /// Which attribute differs (`content`, `mode`, `uid`, ...); empty when the values are
    /// the whole thing (a JSON value, or an entry present on one side only).
    pub field: String,
    /// The values; `None` where the input has no such thing.
    pub input0: Option<String>,
    pub input1: Option<String>,
    /// The layer index the difference is in (strict comparison).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Where each side's file content lives: (layer index, name in that layer).
    #[serde(skip)]
    pub sources: [Option<(usize, Vec<u8>)>; 2],
}

impl Difference {
    pub fn new(
        category: Category,
        name: impl Into<String>,
        field: impl Into<String>,
        input0: Option<String>,
        input1: Option<String>,
    ) -> Difference {
        Difference {
            category,
            name: name.into(),
            field: field.into(),
            input0,
            input1,
            layer: None,
            sources: [None, None],
        }
    }

    /// A table cell for one side.
    pub fn cell(&self, side: usize) -> String {
        let v = if side == 0 {
            &self.input0
        } else {
            &self.input1
        };
        match v {
            None => "(absent)".into(),
            Some(v) if self.field.is_empty() || self.field == "content" => v.clone(),
            Some(v) => format!("{}={v}", self.field),
        }
    }
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub inputs: [String; 2],
    #[serde(rename = "imageDigests")]
    pub image_digests: [String; 2],
    pub semantic: bool,
    pub equal: bool,
    pub differences: Vec<Difference>,
}

/// The widest a value cell gets in the table, so that a whole layer list or a long label
/// does not push the other column off the screen. A digest with its field name
/// (`diff_id=sha256:...`, 79) always fits. `--json` keeps every value whole.
pub const MAX_CELL: usize = 96;

/// `s` cut to [`MAX_CELL`] characters, saying how much was left out.
fn shorten(s: String) -> String {
    let n = s.chars().count();
    if n <= MAX_CELL {
        return s;
    }
    // Keep as much as fits beside the note, whose length depends on what it counts.
    let mut keep = MAX_CELL;
    let note = loop {
        let note = format!("… (+{} chars)", n - keep);
        if keep + note.chars().count() <= MAX_CELL {
            break note;
        }
        keep -= 1;
    };
    let mut cut: String = s.chars().take(keep).collect();
    cut.push_str(&note);
    cut
}

impl Report {
    /// The table, columns padded; a header line even when there are no rows. Values longer
    /// than [`MAX_CELL`] characters are shortened (`--json` has them whole).
    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .differences
            .iter()
            .map(|d| {
                [
                    d.category.name().to_string(),
                    d.name.clone(),
                    shorten(d.cell(0)),
                    shorten(d.cell(1)),
                ]
            })
            .collect();
        let header = ["TYPE", "NAME", "INPUT-0", "INPUT-1"].map(String::from);
        let mut width = [0usize; 3];
        for r in std::iter::once(&header).chain(&rows) {
            for (w, c) in width.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&header).chain(&rows) {
            for (i, c) in r.iter().enumerate() {
                if i < 3 {
                    out.push_str(c);
                    out.push_str(&" ".repeat(width[i] - c.chars().count() + 4));
                } else {
                    out.push_str(c);
                }
            }
            while out.ends_with(' ') {
                out.pop();
            }
            out.push('\n');
        }
        out
    }

    /// Pretty JSON (keys in a fixed order).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(differences: Vec<Difference>) -> Report {
        Report {
            inputs: ["a".into(), "b".into()],
            image_digests: [String::new(), String::new()],
            semantic: false,
            equal: differences.is_empty(),
            differences,
        }
    }

    #[test]
    fn table_pads_columns_and_names_fields() {
        let r = report(vec![
            Difference::new(
                Category::Config,
                "config.User",
                "",
                None,
                Some("nobody".into()),
            ),
            Difference::new(
                Category::File,
                "layers[0]/etc/passwd",
                "mode",
                Some("0644".into()),
                Some("0600".into()),
            ),
        ]);
        assert_eq!(
            r.table(),
            "TYPE      NAME                    INPUT-0      INPUT-1\n\
             Config    config.User             (absent)     nobody\n\
             File      layers[0]/etc/passwd    mode=0644    mode=0600\n"
        );
        assert_eq!(
            report(vec![]).table(),
            "TYPE    NAME    INPUT-0    INPUT-1\n"
        );
    }

    #[test]
    fn long_values_are_shortened_in_the_table_only() {
        let long = "x".repeat(500);
        let r = report(vec![Difference::new(
            Category::Manifest,
            "manifest.layers",
            "",
            Some(long.clone()),
            Some("[]".into()),
        )]);
        let table = r.table();
        let row = table.lines().nth(1).unwrap();
        let cell = row
            .split("    ")
            .find(|c| c.starts_with('x'))
            .unwrap()
            .to_string();
        assert_eq!(cell.chars().count(), MAX_CELL);
        assert!(
            cell.ends_with(&format!("… (+{} chars)", 500 - (MAX_CELL - 14))),
            "{cell}"
        );
        assert!(row.ends_with("    []"), "{row}");
        assert!(r.json().contains(&long));
    }
}
