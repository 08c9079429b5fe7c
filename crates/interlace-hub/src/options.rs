//! Where and how to reach the Hub: the standard Hugging Face environment.

use std::path::PathBuf;

/// The Hub endpoint when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How [`crate::fetch_model`] reaches the Hub and where it caches files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// Base URL of the Hub (`HF_ENDPOINT`), without a trailing `/`.
    pub endpoint: String,
    /// The cache's `hub` directory, holding `models--owner--name/` folders (`HF_HUB_CACHE`,
    /// else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Access token for gated and private repositories (`HF_TOKEN`, else the file
    /// `HF_TOKEN_PATH` or `$HF_HOME/token` that `huggingface-cli login` writes).
    pub token: Option<String>,
    /// Use the cache only, never the network (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Show a progress bar per downloaded file on stderr.
    pub progress: bool,
    /// How many times an interrupted download is resumed within one run before giving up
    /// (the partial file stays in the cache, so the next run resumes it again).
    pub retries: usize,
}

impl HubOptions {
    /// The options the process environment gives, as `huggingface_hub` reads it.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The options `var` gives (`var(name)` is the value of an environment variable);
    /// [`HubOptions::from_env`] with another source, for tests and embedding.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let hf_home = set("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = set("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home(&set).join(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = set("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| hf_home.join("hub"));
        let token_file = set("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| hf_home.join("token"));
        let token = set("HF_TOKEN").or_else(|| std::fs::read_to_string(token_file).ok()).map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        Self {
            endpoint: set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').to_string(),
            cache_dir,
            token,
            offline: set("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v)),
            progress: true,
            retries: 3,
        }
    }
}

fn home(set: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    set("HOME").or_else(|| set("USERPROFILE")).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// `huggingface_hub`'s reading of a boolean environment variable.
fn is_true(value: &str) -> bool {
    ["1", "ON", "YES", "TRUE"].contains(&value.trim().to_ascii_uppercase().as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn options(vars: &[(&str, &str)]) -> HubOptions {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubOptions::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let o = options(&[("HOME", "/home/u")]);
        assert_eq!(o.endpoint, "https://huggingface.co");
        assert_eq!(o.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(o.token, None);
        assert!(!o.offline);
        let o = options(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(o.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
    }

    #[test]
    fn environment_overrides() {
        let o = options(&[("HF_HOME", "/hf"), ("HF_ENDPOINT", "http://127.0.0.1:8080/"), ("HF_TOKEN", " hf_abc\n"), ("HF_HUB_OFFLINE", "yes")]);
        assert_eq!(o.endpoint, "http://127.0.0.1:8080");
        assert_eq!(o.cache_dir, PathBuf::from("/hf/hub"));
        assert_eq!(o.token.as_deref(), Some("hf_abc"));
        assert!(o.offline);
        let o = options(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache"), ("HF_HUB_OFFLINE", "0")]);
        assert_eq!(o.cache_dir, PathBuf::from("/cache"));
        assert!(!o.offline);
    }

    #[test]
    fn the_login_token_file_is_read_when_hf_token_is_unset() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
        let o = options(&[("HF_HOME", home.path().to_str().unwrap())]);
        assert_eq!(o.token.as_deref(), Some("hf_from_file"));
        let o = options(&[("HF_HOME", home.path().to_str().unwrap()), ("HF_TOKEN", "hf_env")]);
        assert_eq!(o.token.as_deref(), Some("hf_env"), "HF_TOKEN wins over the file");
    }
}
