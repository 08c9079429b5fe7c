//! The benchmarks VLMEvalKit evaluates the INTERLACE paper on, plus MME and MMStar, and what
//! kind of dataset each one is in VLMEvalKit.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A VLMEvalKit dataset, by the name VLMEvalKit gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Dataset {
    /// `AI2D_TEST`: science diagrams, multiple choice.
    Ai2dTest,
    /// `ChartQA_TEST`: charts, relaxed accuracy over the `human` and `augmented` splits.
    ChartQaTest,
    /// `OCRBench`: 1000 OCR questions, substring match per category, scored out of 1000.
    OcrBench,
    /// `TextVQA_VAL`: text in photos, VQA accuracy over ten human answers.
    TextVqaVal,
    /// `MMBench_DEV_EN_V11`: multiple choice, scored circularly (every rotation right).
    MmBenchDevEnV11,
    /// `POPE`: object hallucination, yes/no; F1 of the yes class.
    Pope,
    /// `RealWorldQA`: multiple choice on driving and everyday photos.
    RealWorldQa,
    /// `HRBench4K`: high-resolution multiple choice, averaged over its cycles.
    HrBench4K,
    /// `HRBench8K`: as HRBench4K at 8K resolution.
    HrBench8K,
    /// `VStarBench` (V*): small details in large images, multiple choice.
    VStarBench,
    /// `MIA-Bench`: instruction following, scored only by an LLM judge.
    MiaBench,
    /// `ScienceQA_TEST`: science questions with hints, multiple choice.
    ScienceQaTest,
    /// `MME`: yes/no pairs per image; accuracy plus accuracy+ per category.
    Mme,
    /// `MMStar`: vision-indispensable multiple choice.
    MmStar,
}

/// How VLMEvalKit builds a dataset's prompt and scores its answers (`DATASET_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// `ImageMCQDataset`: hint, question, options, instruction; option extraction.
    MultipleChoice,
    /// `ImageYORNDataset`: the question as written; yes/no extraction.
    YesNo,
    /// `ImageVQADataset` and the other open-answer datasets.
    Open,
}

impl Dataset {
    /// Every dataset, in the paper's table order, then MME and MMStar.
    pub const ALL: [Dataset; 14] = [
        Dataset::Ai2dTest,
        Dataset::ChartQaTest,
        Dataset::OcrBench,
        Dataset::TextVqaVal,
        Dataset::MmBenchDevEnV11,
        Dataset::Pope,
        Dataset::RealWorldQa,
        Dataset::HrBench4K,
        Dataset::HrBench8K,
        Dataset::VStarBench,
        Dataset::MiaBench,
        Dataset::ScienceQaTest,
        Dataset::Mme,
        Dataset::MmStar,
    ];

    /// VLMEvalKit's name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Ai2dTest => "AI2D_TEST",
            Dataset::ChartQaTest => "ChartQA_TEST",
            Dataset::OcrBench => "OCRBench",
            Dataset::TextVqaVal => "TextVQA_VAL",
            Dataset::MmBenchDevEnV11 => "MMBench_DEV_EN_V11",
            Dataset::Pope => "POPE",
            Dataset::RealWorldQa => "RealWorldQA",
            Dataset::HrBench4K => "HRBench4K",
            Dataset::HrBench8K => "HRBench8K",
            Dataset::VStarBench => "VStarBench",
            Dataset::MiaBench => "MIA-Bench",
            Dataset::ScienceQaTest => "ScienceQA_TEST",
            Dataset::Mme => "MME",
            Dataset::MmStar => "MMStar",
        }
    }

    /// The dataset class's type.
    pub fn kind(self) -> DatasetKind {
        match self {
            Dataset::Pope | Dataset::Mme => DatasetKind::YesNo,
            Dataset::ChartQaTest | Dataset::OcrBench | Dataset::TextVqaVal | Dataset::MiaBench => DatasetKind::Open,
            _ => DatasetKind::MultipleChoice,
        }
    }

    /// Whether VLMEvalKit can score it only with an LLM judge (no rule-based fallback exists).
    pub fn needs_judge(self) -> bool {
        self == Dataset::MiaBench
    }

    /// The dataset a benchmark file or `--dataset` value names: VLMEvalKit's name (any case,
    /// `-`/`_` interchangeable), or a common short form (`VStar`, `MIABench`, `HRBench_4K`).
    /// A file may add a suffix after the name (`MMBench_DEV_EN_V11_small.tsv`); the longest
    /// matching name wins.
    pub fn detect(name: &str) -> Option<Dataset> {
        let key = canonical(name);
        let aliases = |d: Dataset| -> Vec<String> {
            let mut names = vec![canonical(d.name())];
            match d {
                Dataset::VStarBench => names.extend(["vstar".into(), "v*".into(), "vstarbench".into()]),
                Dataset::MiaBench => names.push("miabench".into()),
                Dataset::HrBench4K => names.push("hrbench_4k".into()),
                Dataset::HrBench8K => names.push("hrbench_8k".into()),
                _ => {}
            }
            names
        };
        let mut best: Option<(usize, Dataset)> = None;
        for dataset in Dataset::ALL {
            for alias in aliases(dataset) {
                let whole = key == alias;
                let prefix = key.strip_prefix(alias.as_str()).is_some_and(|rest| rest.starts_with('_'));
                if (whole || prefix) && best.is_none_or(|(len, _)| alias.len() > len) {
                    best = Some((alias.len(), dataset));
                }
            }
        }
        best.map(|(_, d)| d)
    }
}

fn canonical(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataset::detect(s).ok_or_else(|| {
            let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
            format!("unknown dataset `{s}`; known: {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_detected() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::detect(d.name()), Some(d));
        }
        assert_eq!(Dataset::detect("mmbench_dev_en_v11_small"), Some(Dataset::MmBenchDevEnV11));
        assert_eq!(Dataset::detect("VStar"), Some(Dataset::VStarBench));
        assert_eq!(Dataset::detect("MIABench"), Some(Dataset::MiaBench));
        assert_eq!(Dataset::detect("MMStarX"), None);
        assert_eq!(Dataset::detect("mcq"), None);
    }
}
