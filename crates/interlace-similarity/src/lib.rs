//! Layer-redundancy analysis and INTERLACE layer selection.
#![deny(missing_docs)]
