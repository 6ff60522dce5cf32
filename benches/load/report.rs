//! Collects the figures of a run and writes them to a JSON results file.

use serde_json::{Map, Value, json};

#[derive(Default)]
pub struct Report {
    scenarios: Map<String, Value>,
}

impl Report {
    pub fn add(&mut self, name: &str, figures: &[(&str, f64)]) {
        let values: Map<String, Value> = figures
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!((v * 100.0).round() / 100.0)))
            .collect();
        self.scenarios.insert(name.to_owned(), Value::Object(values));
    }

    /// Adds figures to a scenario already reported.
    pub fn extend(&mut self, name: &str, figures: &[(&str, f64)]) {
        if let Some(Value::Object(values)) = self.scenarios.get_mut(name) {
            for (k, v) in figures {
                values.insert((*k).to_owned(), json!((v * 100.0).round() / 100.0));
            }
        }
    }

    pub fn write(&self, path: &str) {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let document = json!({
            "machine": { "cores": cores },
            "scenarios": self.scenarios,
        });
        match serde_json::to_string_pretty(&document) {
            Ok(text) => match std::fs::write(path, text + "\n") {
                Ok(()) => println!("figures written to {path}"),
                Err(e) => eprintln!("cannot write {path}: {e}"),
            },
            Err(e) => eprintln!("cannot encode the figures: {e}"),
        }
    }
}
