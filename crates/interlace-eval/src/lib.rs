//! Evaluation of pruned models: benchmark scores, held-out loss and speed.
#![deny(missing_docs)]
