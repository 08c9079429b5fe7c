//! The subsets of a Hub dataset and where their files are: the `configs:` list of the dataset
//! card's YAML front matter, which `datasets.get_dataset_config_names` and `load_dataset` read for
//! parquet repositories.

use std::collections::BTreeMap;

/// One entry of a dataset card's `configs:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetConfig {
    /// The `config_name`.
    pub name: String,
    /// The `data_files` patterns of its train split (`CoSyn_400k_chart/train-*`), relative to the
    /// repository root; empty when the card gives none.
    pub train_files: Vec<String>,
}

/// The `config_name`s of a dataset card, in order.
pub fn config_names(readme: &str) -> Vec<String> {
    dataset_configs(readme).into_iter().map(|c| c.name).collect()
}

/// The `configs:` entries of a dataset card's YAML front matter, in order, with their train
/// files. Reads only that block, in the shapes the Hub writes: `data_files:` as a list of
/// `- split: NAME` / `path: PATTERN` (or `path:` with a list of patterns) entries, as a plain
/// list of patterns, or as one pattern; no YAML parser is needed.
pub fn dataset_configs(readme: &str) -> Vec<DatasetConfig> {
    let mut lines = readme.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Vec::new();
    }
    let mut configs: Vec<DatasetConfig> = Vec::new();
    let mut in_configs = false;
    // The split the `path` lines that follow belong to (`train` until a `split:` says otherwise).
    let mut split = String::from("train");
    let mut in_path_list = false;
    for line in lines {
        if line.trim_end() == "---" {
            break;
        }
        if !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty() {
            in_configs = line.trim_end() == "configs:";
            continue;
        }
        if !in_configs {
            continue;
        }
        let config = line.trim();
        let item = config.strip_prefix("- ").map(str::trim);
        if let Some(name) = item.and_then(|i| i.strip_prefix("config_name:")) {
            configs.push(DatasetConfig { name: unquote(name.trim()).to_string(), train_files: Vec::new() });
            split = "train".into();
            in_path_list = false;
            continue;
        }
        let Some(current) = configs.last_mut() else { continue };
        let mut add = |pattern: &str, split: &str| {
            if split == "train" && !pattern.is_empty() {
                current.train_files.push(unquote(pattern).to_string());
            }
        };
        if let Some(rest) = config.strip_prefix("data_files:") {
            in_path_list = rest.trim().is_empty();
            add(rest.trim(), "train");
        } else if let Some(name) = item.and_then(|i| i.strip_prefix("split:")) {
            split = unquote(name.trim()).to_string();
            in_path_list = false;
        } else if let Some(rest) = config.strip_prefix("path:") {
            in_path_list = rest.trim().is_empty();
            add(rest.trim(), &split);
        } else if let (Some(pattern), true) = (item, in_path_list) {
            add(pattern, &split);
        }
    }
    configs
}

/// The `num_examples` of each config's train split in the card's `dataset_info:` block (the
/// split sizes `push_to_hub` records and `datasets` reports), by config name; a card with one
/// unnamed config gives it as `default`.
pub fn train_example_counts(readme: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let mut lines = readme.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return counts;
    }
    let (mut in_info, mut config, mut splits_indent, mut split) = (false, String::from("default"), None::<usize>, String::new());
    for line in lines {
        if line.trim_end() == "---" {
            break;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 0 && !text.starts_with('-') && !text.is_empty() {
            in_info = text == "dataset_info:";
            continue;
        }
        if !in_info {
            continue;
        }
        if let Some(name) = text.strip_prefix("- config_name:") {
            (config, splits_indent) = (unquote(name.trim()).to_string(), None);
            continue;
        }
        if text == "splits:" {
            (splits_indent, split) = (Some(indent), String::new());
            continue;
        }
        // The splits list ends at the next key at (or left of) its own indentation.
        if splits_indent.is_some_and(|s| indent < s || (indent == s && !text.starts_with("- "))) {
            splits_indent = None;
        }
        if splits_indent.is_none() {
            continue;
        }
        if let Some(name) = text.strip_prefix("- name:") {
            split = unquote(name.trim()).to_string();
        } else if let (Some(n), "train") = (text.strip_prefix("num_examples:"), split.as_str()) {
            if let Ok(n) = n.trim().parse() {
                counts.insert(config.clone(), n);
            }
        }
    }
    counts
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

/// Whether `path` (relative, `/`-separated) matches the data-files `pattern`, where `*` matches
/// within one path component and `**` any number of components, as `datasets` resolves them.
pub fn matches_pattern(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    match_components(&pattern, &path)
}

fn match_components(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => match_components(&pattern[1..], path) || (!path.is_empty() && match_components(pattern, &path[1..])),
        (Some(p), Some(c)) => match_component(p.as_bytes(), c.as_bytes()) && match_components(&pattern[1..], &path[1..]),
        _ => false,
    }
}

fn match_component(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => match_component(&pattern[1..], text) || (!text.is_empty() && match_component(pattern, &text[1..])),
        Some(b'?') => !text.is_empty() && match_component(&pattern[1..], &text[1..]),
        Some(&c) => text.first() == Some(&c) && match_component(&pattern[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_configs_of_a_dataset_card() {
        let card = "---\nlicense: mit\nconfigs:\n- config_name: b_first\n  data_files:\n  - split: train\n    path: b_first/train-*\n  - split: test\n    path: b_first/test-*\n- config_name: 'a_second'\n  data_files:\n  - split: train\n    path:\n    - data/a/part1-*\n    - data/a/part2-*\n- config_name: plain\n  data_files: plain/*.parquet\n- config_name: bare\ndataset_info:\n- config_name: ignored\n---\n# Title\n- config_name: not_yaml\n";
        let configs = dataset_configs(card);
        let files: Vec<(&str, Vec<&str>)> = configs.iter().map(|c| (c.name.as_str(), c.train_files.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            files,
            [
                ("b_first", vec!["b_first/train-*"]),
                ("a_second", vec!["data/a/part1-*", "data/a/part2-*"]),
                ("plain", vec!["plain/*.parquet"]),
                ("bare", vec![])
            ]
        );
        assert_eq!(config_names("# no front matter"), Vec::<String>::new());
        assert_eq!(config_names("---\nconfigs:\n  - config_name: \"x\"\n    data_files: x/*\n---\n"), ["x"]);
    }

    #[test]
    fn reads_the_train_sizes_of_dataset_info() {
        let card = "---\nconfigs:\n- config_name: a\ndataset_info:\n- config_name: a\n  features:\n  - name: images\n    list:\n    - name: bytes\n  splits:\n  - name: test\n    num_examples: 5\n  - name: train\n    num_bytes: 10\n    num_examples: 116814\n  download_size: 3\n- config_name: b\n  splits:\n  - name: validation\n    num_examples: 2\n  num_examples: 99\nlicense: x\n---\n";
        assert_eq!(train_example_counts(card), BTreeMap::from([("a".to_string(), 116814)]));
        let single = "---\ndataset_info:\n  features:\n  - name: text\n  splits:\n  - name: train\n    num_examples: 7\n---\n";
        assert_eq!(train_example_counts(single), BTreeMap::from([("default".to_string(), 7)]));
    }

    #[test]
    fn patterns_match_as_datasets_resolves_them() {
        assert!(matches_pattern("CoSyn/train-*", "CoSyn/train-00000-of-00002.parquet"));
        assert!(!matches_pattern("CoSyn/train-*", "CoSyn/sub/train-0.parquet"));
        assert!(!matches_pattern("CoSyn/train-*", "CoSyn_2/train-0.parquet"));
        assert!(matches_pattern("data/**/train-*.parquet", "data/x/y/train-0.parquet"));
        assert!(matches_pattern("data/**/train-*.parquet", "data/train-0.parquet"));
        assert!(matches_pattern("a?c/*", "abc/f"));
    }
}
