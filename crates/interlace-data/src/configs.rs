//! The subset order of a Hub dataset: the `configs:` list of its README's YAML front matter,
//! which is where `datasets.get_dataset_config_names` takes it from for parquet repositories.

/// The `config_name`s of the YAML front matter of a dataset card, in order. Reads only the
/// `configs:` block (entries `- config_name: NAME`), so no YAML parser is needed; an empty
/// list means the card has no such block.
pub fn config_names(readme: &str) -> Vec<String> {
    let mut lines = readme.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut in_configs = false;
    for line in lines {
        if line.trim_end() == "---" {
            break;
        }
        let top_level = !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty();
        if top_level {
            in_configs = line.trim_end() == "configs:";
            continue;
        }
        if !in_configs {
            continue;
        }
        // `- config_name: X` starts an entry, at the block's own indentation.
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("- config_name:") {
            names.push(unquote(rest.trim()).to_string());
        }
    }
    names
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_config_order_of_a_dataset_card() {
        let card = "---\nlicense: mit\nconfigs:\n- config_name: b_first\n  data_files:\n  - split: train\n    path: b_first/train-*\n- config_name: 'a_second'\n  data_files:\n  - split: train\n    path: a_second/train-*\ndataset_info:\n- config_name: ignored\n---\n# Title\n- config_name: not_yaml\n";
        assert_eq!(config_names(card), ["b_first", "a_second"]);
        assert_eq!(config_names("# no front matter"), Vec::<String>::new());
        let indented = "---\nconfigs:\n  - config_name: \"x\"\n    data_files: x/*\n---\n";
        assert_eq!(config_names(indented), ["x"]);
    }
}
