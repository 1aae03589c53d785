//! `slo-check validate`, `list` and `schema`: the scenario files, checked, listed, and
//! the format they follow.

use crate::cli::{ListArgs, ValidateArgs};
use crate::exit;
use crate::scenario;

/// `slo-check schema`: the JSON Schema of the scenario format.
pub fn schema() -> u8 {
    println!(
        "{}",
        serde_json::to_string_pretty(&scenario::json_schema()).unwrap_or_default()
    );
    exit::PASS
}

/// `slo-check validate`: 0 when every file is valid, 2 otherwise.
pub fn validate(args: &ValidateArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![args.dir.scenarios_dir.clone()]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            match scenario::list_files(p) {
                Ok(found) if found.is_empty() => {
                    eprintln!(
                        "error: {}: no .yaml or .yml files in this directory",
                        p.display()
                    );
                    return exit::USAGE;
                }
                Ok(found) => files.extend(found),
                Err(e) => {
                    eprintln!("error: {}: cannot read directory: {e}", p.display());
                    return exit::USAGE;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut bad = 0;
    for f in &files {
        match scenario::load(f) {
            Ok(s) => println!(
                "ok    {} ({}: {} steps, {} SLOs)",
                f.display(),
                s.name,
                s.workflow.len(),
                s.slos.len()
            ),
            Err(errors) => {
                bad += 1;
                for e in &errors.0 {
                    eprintln!("error: {e}");
                }
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} scenario files are invalid", files.len());
        exit::USAGE
    } else {
        exit::PASS
    }
}

/// `slo-check list`: the named scenarios with their descriptions.
pub fn list(args: &ListArgs) -> u8 {
    let files = match scenario::list_files(&args.dir.scenarios_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: --scenarios-dir {}: {e}",
                args.dir.scenarios_dir.display()
            );
            return exit::USAGE;
        }
    };
    let mut rows = Vec::new();
    for f in &files {
        match scenario::load(f) {
            Ok(s) => rows.push((s.name, s.description)),
            Err(_) => rows.push((
                f.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                "(invalid: run `slo-check validate` for details)".into(),
            )),
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, desc) in rows {
        println!("{name:width$}  {desc}");
    }
    exit::PASS
}
