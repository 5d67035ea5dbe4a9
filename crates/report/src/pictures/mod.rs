//! `mmusim report`: a run's or a sweep's directory drawn as SVG figures
//! and an HTML page in `DIR/report/`, with the metrics in long form beside
//! them. It reads only what the run or sweep wrote (see ARCHITECTURE.md,
//! "Pictures").

pub mod draw;
pub mod figures;
pub mod page;
pub mod results;

use std::path::{Path, PathBuf};

pub use results::{ReportError, Results};

use crate::outputs::metrics_long_csv;
use crate::run::FileError;

/// The report's directory inside a results directory.
pub const REPORT_DIR: &str = "report";

/// What `write` wrote.
#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
    pub figures: usize,
    pub rows: usize,
    pub planned_rows: usize,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    mmusim_trace::write_atomically(path, bytes).map_err(|e| ReportError::File(FileError::new(path, "write", e)))
}

/// Writes `dir/report/`: one SVG per figure, `metrics-long.csv`, and
/// `index.html` last (so a page that exists has its figures). SVG files a
/// previous report left there and this one does not write are removed.
pub fn write(dir: &Path) -> Result<Written, ReportError> {
    let results = Results::read(dir)?;
    let figures = figures::choose(&results);
    let out = dir.join(REPORT_DIR);
    std::fs::create_dir_all(&out).map_err(|e| ReportError::File(FileError::new(&out, "create", e)))?;
    for figure in &figures {
        let svg = draw::svg(figure).map_err(|why| ReportError::NotResults { path: out.join(&figure.file), why })?;
        write_file(&out.join(&figure.file), svg.as_bytes())?;
    }
    write_file(&out.join(page::LONG_CSV), metrics_long_csv(&results.rows).as_bytes())?;
    remove_stale_figures(&out, &figures)?;
    write_file(&out.join("index.html"), page::index_html(&results, &figures).as_bytes())?;
    Ok(Written { dir: out, figures: figures.len(), rows: results.rows.len(), planned_rows: results.planned_rows })
}

fn remove_stale_figures(out: &Path, figures: &[figures::Figure]) -> Result<(), ReportError> {
    let listing = std::fs::read_dir(out).map_err(|e| ReportError::File(FileError::new(out, "read", e)))?;
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".svg") && !figures.iter().any(|f| f.file == name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| ReportError::File(FileError::new(&path, "remove", e)))?;
        }
    }
    Ok(())
}
