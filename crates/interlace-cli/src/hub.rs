//! `--model owner/name[@revision]`: Hub ids wherever a model directory is accepted.

use std::error::Error;
use std::path::{Path, PathBuf};

use interlace_prune::hub::{resolve_model, HubOptions};

/// The local directory a `--model` (or `--base`) argument names: the argument itself when it
/// exists, else the snapshot of the Hub repository it names, downloaded into the standard
/// Hugging Face cache if needed (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE` apply).
pub fn model_dir(arg: &Path) -> Result<PathBuf, Box<dyn Error>> {
    let text = arg.to_str().ok_or_else(|| format!("{}: not valid UTF-8", arg.display()))?;
    let dir = resolve_model(text, &HubOptions::from_env())?;
    if dir != arg {
        eprintln!("{text}: {}", dir.display());
    }
    Ok(dir)
}
